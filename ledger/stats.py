"""Numbers about the traffic and the ledger, for the metrics collector, the explorer and ops.

Every query here is served by an index: windows by ``ix_events_received_at``, the latest
event per channel by ``ix_events_channel_received_at`` (one probe per channel listed in the
``channels`` table), pending messages by the partial index ``ix_messages_pending``. Totals are
plain counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Select, case, func, literal, select, true
from sqlalchemy.sql.elements import ColumnElement

from ledger.dead_letter_store import count_waiting
from ledger.places import hour_of
from ledger.results import Backlog, LedgerCounts, WebhookStats
from ledger.schema import (
    channels,
    dead_letters,
    events,
    inbound,
    message_hours,
    messages,
    pending_predicate,
    receipts,
)
from qlara import Source

#: Key of ``WebhookStats.last_event_at`` for events that named no channel.
NO_CHANNEL = "other"


def webhook_stats(conn: Connection, now: datetime) -> WebhookStats:
    """The traffic as of ``now`` (timezone-aware UTC); see :class:`ledger.WebhookStats`."""
    windows = conn.execute(
        select(
            func.count().filter(events.c.received_at >= now - timedelta(minutes=5)),
            func.count().filter(events.c.received_at >= now - timedelta(minutes=15)),
            func.count(),
        ).where(events.c.received_at >= now - timedelta(minutes=60), from_webhook())
    ).one()
    pending, oldest_sent = conn.execute(
        select(func.count(), func.min(messages.c.sent_at)).where(pending_predicate())
    ).one()
    events_total, duplicates_total, filled_total = conn.execute(
        select(
            func.count(),
            func.coalesce(func.sum(events.c.duplicates), 0),
            func.count().filter(events.c.source == Source.POLL.value),
        )
    ).one()
    inbound_total = conn.execute(select(func.count()).select_from(inbound)).scalar_one()
    return WebhookStats(
        last_event_at=last_event_at(conn),
        events_last_5m=int(windows[0]),
        events_last_15m=int(windows[1]),
        events_last_60m=int(windows[2]),
        pending=int(pending),
        oldest_pending_age_seconds=(
            None if oldest_sent is None else (now - oldest_sent).total_seconds()
        ),
        events_total=int(events_total),
        duplicates_total=int(duplicates_total),
        filled_by_polling_total=int(filled_total),
        inbound_total=int(inbound_total),
    )


@dataclass(frozen=True, slots=True)
class Horizon:
    """How long after its send a message may still get a final status, by channel:
    ``by_channel`` for the channels named, ``default`` for every other (and none)."""

    by_channel: Mapping[str, timedelta]
    default: timedelta

    def cutoff(
        self, channel: ColumnElement[Any], sent_at: ColumnElement[datetime], now: datetime
    ) -> ColumnElement[datetime]:
        """``now`` minus the span of each row's ``channel``, typed as ``sent_at``."""
        default = literal(now - self.default, sent_at.type)
        if not self.by_channel:
            return default
        return case(
            *(
                (channel == name, literal(now - span, sent_at.type))
                for name, span in sorted(self.by_channel.items())
            ),
            else_=default,
        )


def pending_by_channel(
    horizon: Horizon | None = None, now: datetime | None = None
) -> Select[str, bool, int, datetime]:
    """(channel or ``""``, sent within the horizon, pending messages, oldest sent time) per
    channel, from ``ix_messages_pending``; without a horizon every message is "within"."""
    # Grouping by an expression, not the column: on the column SQLite would rather walk the
    # whole channel index in order than sort the few pending rows.
    channel = func.coalesce(messages.c.channel, "")
    within: ColumnElement[bool]
    if horizon is None:
        within = true()
    else:
        at = now if now is not None else datetime.now(UTC)
        within = messages.c.sent_at >= horizon.cutoff(messages.c.channel, messages.c.sent_at, at)
    query = select(channel, within, func.count(), func.min(messages.c.sent_at)).where(
        pending_predicate()
    )
    return query.group_by(channel) if horizon is None else query.group_by(channel, within)


def backlog(
    conn: Connection, horizon: Horizon | None = None, now: datetime | None = None
) -> Backlog:
    """Pending messages per channel (split at ``horizon`` when given: older ones are
    unresolved) and dead letters not redriven; see :class:`Backlog`.

    Both are read from indexes, so the cost follows what is waiting, not the ledger's size:
    the pending rows through the partial index ``ix_messages_pending`` (the grouping is done
    over those rows only), the dead letters through ``ix_dead_letters_redriven_at_id``.
    """
    rows = conn.execute(pending_by_channel(horizon, now))
    pending: dict[str | None, tuple[int, datetime]] = {}
    unresolved: dict[str | None, int] = {}
    for name, within, count, oldest in rows:
        if within:
            pending[name or None] = (int(count), oldest)
        else:
            unresolved[name or None] = int(count)
    return Backlog(pending=pending, dead_letters=count_waiting(conn), unresolved=unresolved)


def from_webhook() -> ColumnElement[bool]:
    """Events Qlara's webhook reported: not the sends the application did, nor what the
    reconciler polled (either would hide the webhook's silence)."""
    return events.c.source == Source.WEBHOOK.value


def last_event_at(conn: Connection) -> dict[str, datetime]:
    """When each channel's newest event from Qlara's webhook was received (``"other"``:
    events without a channel), one backward walk of ``ix_events_channel_received_at`` per
    channel of the ``channels`` table, past the sends and polled statuses recorded since."""
    names: list[str | None] = [None, *conn.execute(select(channels.c.channel)).scalars()]
    latest: dict[str, datetime] = {}
    for name in names:
        matches: Any = events.c.channel.is_(None) if name is None else events.c.channel == name
        when = conn.execute(
            select(events.c.received_at)
            .where(matches, from_webhook())
            .order_by(events.c.received_at.desc())
            .limit(1)
        ).scalar()
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


def top_countries(conn: Connection, since: datetime, limit: int) -> list[str]:
    """The ``limit`` destination countries with the most messages changed since ``since``'s
    hour, most first (ties by code), from the per-hour counts (:mod:`ledger.places`)."""
    h = message_hours.c
    found = func.sum(h.messages).label("n")
    rows = conn.execute(
        select(h.country, found)
        .where(h.hour >= hour_of(since), h.country.is_not(None))
        .group_by(h.country)
        .having(found > 0)
        .order_by(found.desc(), h.country)
        .limit(limit)
    )
    return [row.country for row in rows]
