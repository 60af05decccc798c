"""The durable record: receipts, status events, messages, inbound replies, dead letters.

Events are deduplicated by key and each message's state is derived from all its events with
:func:`qlara.reduce_state`, so recording is idempotent and order-independent. SQLite (the
default) or PostgreSQL, through SQLAlchemy Core; the schema is managed by the Alembic
migrations shipped in ``ledger/migrations``.

What other packages may import, and nothing else (an import-linter contract in
``pyproject.toml`` fails the build on any other ``ledger.*`` import from them):

- this package's names below: :class:`Ledger`, through which the receiver, the workers and
  the read API record and read, with its results and errors; and :func:`build_engine` for a
  reader that brings its own connections;
- :mod:`ledger.reading`, the read interface: the functions over a connection that the
  :class:`Ledger` answers with and that the explorer, which reads through its own engine,
  calls directly, so both run the same statements;
- :mod:`ledger.schema`, the tables and index-shaped expressions, because the explorer's
  charts and lists are SQL of its own over them: only it needs those statements, and each is
  written against the index that serves it, so they stay in ``dashboard/queries.py``.

Every other module (recording, joining, the rollups' writing halves, purge, polling, the
engine's settings, migrations) may change shape with the schema and is the ledger's own.
Tests and ``bench/`` may reach anything.
"""

from ledger.counting import CountKey, CountReceipt, Tally
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
    "CountKey",
    "CountReceipt",
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
    "Tally",
    "WebhookStats",
    "build_engine",
    "default_sqlite_url",
]
