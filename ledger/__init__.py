"""The durable record: receipts, status events, messages, inbound replies, dead letters.

Events are deduplicated by key and each message's state is derived from all its events with
:func:`qlara.reduce_state`, so recording is idempotent and order-independent. SQLite (the
default) or PostgreSQL, through SQLAlchemy Core; the schema is managed by the Alembic
migrations shipped in ``ledger/migrations``.
"""

from ledger.engine import build_engine, default_sqlite_url
from ledger.errors import LedgerError, LedgerRefused, LedgerUnavailable
from ledger.ledger import Ledger
from ledger.polling import DuePoll
from ledger.results import (
    Backlog,
    DeadLetter,
    EventRecord,
    LatencyObservation,
    LedgerCounts,
    MessageDetail,
    MessagePage,
    MessageSummary,
    PurgeResult,
    RecordResult,
    WebhookStats,
)
from ledger.stats import Horizon

__all__ = [
    "Backlog",
    "DeadLetter",
    "DuePoll",
    "EventRecord",
    "Horizon",
    "LatencyObservation",
    "Ledger",
    "LedgerCounts",
    "LedgerError",
    "LedgerRefused",
    "LedgerUnavailable",
    "MessageDetail",
    "MessagePage",
    "MessageSummary",
    "PurgeResult",
    "RecordResult",
    "WebhookStats",
    "build_engine",
    "default_sqlite_url",
]
