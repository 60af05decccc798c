"""Retention: deleting what is older than a cut-off, safely while writers run.

Events are deleted a batch of messages at a time, each batch in its own transaction that
first locks those messages' rows in ascending message_id order, the same lock and order
writers take (see :mod:`ledger.recording`). So a purge never deletes an event a writer is
about to count, never deletes a message a writer is adding an event to, and cannot deadlock
with writers. A message that keeps some events keeps its recorded state.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, Engine, delete, exists, select

from ledger import places
from ledger.joining import forget_unused
from ledger.places import hour_of
from ledger.polling import forget_polls
from ledger.results import PurgeResult
from ledger.rollup import minute_of
from ledger.schema import (
    dead_letters,
    event_minutes,
    events,
    inbound,
    latency_hours,
    message_hours,
    messages,
    receipts,
)

#: Messages handled per purge transaction: short transactions keep writers waiting briefly.
BATCH = 500


def purge(engine: Engine, older_than: datetime) -> PurgeResult:
    """Delete events received before ``older_than``, then messages with no events left,
    inbound replies received and receipts recorded before it, the per-minute event counts of
    the minutes before its own, dead letters redriven before it, and the customer ids whose
    message is gone. ``engine`` must begin
    write transactions (see :mod:`ledger.engine`)."""
    deleted_events = deleted_messages = 0
    while True:
        with engine.begin() as conn:
            batch = _next_batch(conn, older_than)
            if not batch:
                break
            n_events, n_messages = _purge_messages(conn, batch, older_than)
            deleted_events += n_events
            deleted_messages += n_messages
    with engine.begin() as conn:
        # Its own statement, after the messages': see ledger.joining on lock order.
        forget_unused(conn)
        forget_polls(conn)
    with engine.begin() as conn:
        n_inbound = conn.execute(delete(inbound).where(inbound.c.received_at < older_than))
        n_receipts = conn.execute(delete(receipts).where(receipts.c.recorded_at < older_than))
        # Only minutes wholly before the cut-off: the minute it falls in keeps its count.
        conn.execute(delete(event_minutes).where(event_minutes.c.minute < minute_of(older_than)))
        # Every message changed before the cut-off's hour is gone, and its counts with it
        conn.execute(delete(message_hours).where(message_hours.c.hour < hour_of(older_than)))
        conn.execute(delete(latency_hours).where(latency_hours.c.hour < hour_of(older_than)))
        n_dead = conn.execute(
            delete(dead_letters).where(
                dead_letters.c.redriven_at.is_not(None),
                dead_letters.c.redriven_at < older_than,
            )
        )
    return PurgeResult(
        events=deleted_events,
        messages=deleted_messages,
        inbound=n_inbound.rowcount,
        receipts=n_receipts.rowcount,
        dead_letters=n_dead.rowcount,
    )


def _next_batch(conn: Connection, older_than: datetime) -> list[str]:
    return list(
        conn.execute(
            select(events.c.message_id)
            .where(events.c.received_at < older_than)
            .distinct()
            .order_by(events.c.message_id)
            .limit(BATCH)
        ).scalars()
    )


def _purge_messages(conn: Connection, batch: list[str], older_than: datetime) -> tuple[int, int]:
    conn.execute(
        select(messages.c.message_id)
        .where(messages.c.message_id.in_(batch))
        .order_by(messages.c.message_id)
        .with_for_update()
    ).all()
    n_events = conn.execute(
        delete(events).where(events.c.message_id.in_(batch), events.c.received_at < older_than)
    ).rowcount
    gone = conn.execute(
        delete(messages)
        .where(
            messages.c.message_id.in_(batch),
            ~exists().where(events.c.message_id == messages.c.message_id),
        )
        .returning(messages.c.message_id, *places.COLUMNS)
    ).all()
    places.record_moves(conn, {row.message_id: row._mapping for row in gone}, {})
    return n_events, len(gone)
