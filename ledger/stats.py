"""Numbers about the traffic and the ledger, for the metrics collector, the explorer and ops.

Every query here is served by an index: windows by ``ix_events_received_at``, the latest
event per channel by ``ix_events_channel_received_at`` (one probe per channel listed in the
``channels`` table), pending messages by the partial index ``ix_messages_pending``. Totals are
plain counts.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from ledger.results import LedgerCounts, WebhookStats
from ledger.schema import (
    channels,
    dead_letters,
    events,
    inbound,
    messages,
    pending_predicate,
    receipts,
)

#: Key of ``WebhookStats.last_event_at`` for events that named no channel.
NO_CHANNEL = "other"


def webhook_stats(conn: Connection, now: datetime) -> WebhookStats:
    """The traffic as of ``now`` (timezone-aware UTC); see :class:`ledger.WebhookStats`."""
    windows = conn.execute(
        select(
            func.count().filter(events.c.received_at >= now - timedelta(minutes=5)),
            func.count().filter(events.c.received_at >= now - timedelta(minutes=15)),
            func.count(),
        ).where(events.c.received_at >= now - timedelta(minutes=60))
    ).one()
    pending, oldest_sent = conn.execute(
        select(func.count(), func.min(messages.c.sent_at)).where(pending_predicate())
    ).one()
    events_total, duplicates_total = conn.execute(
        select(func.count(), func.coalesce(func.sum(events.c.duplicates), 0))
    ).one()
    inbound_total = conn.execute(select(func.count()).select_from(inbound)).scalar_one()
    return WebhookStats(
        last_event_at=_last_event_at(conn),
        events_last_5m=int(windows[0]),
        events_last_15m=int(windows[1]),
        events_last_60m=int(windows[2]),
        pending=int(pending),
        oldest_pending_age_seconds=(
            None if oldest_sent is None else (now - oldest_sent).total_seconds()
        ),
        events_total=int(events_total),
        duplicates_total=int(duplicates_total),
        inbound_total=int(inbound_total),
    )


def _last_event_at(conn: Connection) -> dict[str, datetime]:
    names: list[str | None] = [None, *conn.execute(select(channels.c.channel)).scalars()]
    latest: dict[str, datetime] = {}
    for name in names:
        matches: Any = events.c.channel.is_(None) if name is None else events.c.channel == name
        when = conn.execute(select(func.max(events.c.received_at)).where(matches)).scalar()
        if when is not None:
            latest[NO_CHANNEL if name is None else name] = when
    return latest


def ledger_counts(conn: Connection) -> LedgerCounts:
    """Row counts of every table, and the duplicate sums."""
    events_n, duplicates = conn.execute(
        select(func.count(), func.coalesce(func.sum(events.c.duplicates), 0))
    ).one()
    inbound_n, inbound_duplicates = conn.execute(
        select(func.count(), func.coalesce(func.sum(inbound.c.duplicates), 0))
    ).one()

    def count(table: Any) -> int:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

    return LedgerCounts(
        events=int(events_n),
        messages=count(messages),
        inbound=int(inbound_n),
        duplicates=int(duplicates),
        inbound_duplicates=int(inbound_duplicates),
        receipts=count(receipts),
        dead_letters=count(dead_letters),
    )
