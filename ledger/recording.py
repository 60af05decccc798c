"""Recording one receipt: a single transaction, idempotent by construction.

1. The receipt id is inserted (insert-or-ignore). Already there: nothing else happens.
2. Every message the receipt touches gets its ``messages`` row locked, in ascending
   message_id order: ``SELECT ... FOR UPDATE``, and when the row does not exist yet, an
   insert-or-ignore of a placeholder first. Events of a message are only ever written while
   holding that lock (purge follows the same rule), so the state recomputed below sees every
   committed event of the message, and the fixed lock order rules out deadlocks between
   writers. On SQLite the transaction began with ``BEGIN IMMEDIATE``: writers are serialised
   and the row locks are moot.
3. Each distinct event is inserted keyed by (message_id, status, event_time, part),
   insert-or-ignore. An event already stored, or repeated within the receipt, only raises
   that event's ``duplicates`` and its message's ``duplicate_count``.
4. Each message that gained an event gets its state recomputed from all its events with
   :func:`qlara.reduce_state`. The sent -> final latency is reported once per message: the
   first transaction to set ``latency_observed_at`` (compare-and-set) reports it.
5. Inbound replies go to their own table, insert-or-ignore by ``inbound_id``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select, update

from ledger.errors import LedgerUnavailable
from ledger.results import LatencyObservation, RecordResult
from ledger.schema import channels, events, inbound, messages, receipts
from ledger.timestamps import from_unix
from ledger.upsert import insert_for
from qlara import DeliveryEvent, InboundMessage, Receipt, reduce_state

#: How often to retry locking a message row that a concurrent purge keeps deleting.
_LOCK_ATTEMPTS = 5

_EventKey = tuple[str, str, datetime, int]


@dataclass(frozen=True, slots=True)
class _StoredEvent:
    """What :func:`qlara.reduce_state` needs of a stored event."""

    status: str
    event_time: datetime
    part: int
    channel: str | None
    customer_message_id: str | None
    phone: str | None
    error: str | None


def record_receipt(conn: Connection, receipt: Receipt, now: datetime) -> RecordResult:
    """Record ``receipt`` inside the transaction open on ``conn`` (see the module docstring)."""
    received_at = from_unix(receipt.received_at)
    if not _claim_receipt(conn, receipt.receipt_id, received_at, now):
        return RecordResult(
            already_recorded=True,
            new_events=[],
            duplicate_events=[],
            new_inbound=0,
            duplicate_inbound=0,
            latencies=[],
        )
    copies = _group_events(receipt.events)
    message_ids = sorted({key[0] for key in copies})
    for message_id in message_ids:
        _lock_message(conn, message_id, received_at, now)

    new_events: list[DeliveryEvent] = []
    duplicate_events: list[DeliveryEvent] = []
    extra_copies: Counter[str] = Counter()
    for key, same in copies.items():
        if _insert_event(conn, same[0], received_at, receipt.receipt_id):
            new_events.append(same[0])
            repeats = same[1:]
        else:
            repeats = same
        if repeats:
            _add_event_duplicates(conn, key, len(repeats))
            duplicate_events.extend(repeats)
            extra_copies[key[0]] += len(repeats)
    _remember_channels(conn, {ev.channel for ev in new_events if ev.channel is not None}, now)

    changed = {ev.message_id for ev in new_events}
    latencies: list[LatencyObservation] = []
    for message_id in message_ids:
        if message_id in changed:
            observed = _refresh_message(conn, message_id, extra_copies[message_id], now)
            if observed is not None:
                latencies.append(observed)
        elif extra_copies[message_id]:
            _add_message_duplicates(conn, message_id, extra_copies[message_id])

    new_inbound, duplicate_inbound = _record_inbound(
        conn, receipt.inbound, received_at, receipt.receipt_id
    )
    return RecordResult(
        already_recorded=False,
        new_events=new_events,
        duplicate_events=duplicate_events,
        new_inbound=new_inbound,
        duplicate_inbound=duplicate_inbound,
        latencies=latencies,
    )


def _claim_receipt(conn: Connection, receipt_id: str, received_at: datetime, now: datetime) -> bool:
    stmt = (
        insert_for(conn, receipts)
        .values(receipt_id=receipt_id, received_at=received_at, recorded_at=now)
        .on_conflict_do_nothing(index_elements=[receipts.c.receipt_id])
        .returning(receipts.c.receipt_id)
    )
    return conn.execute(stmt).first() is not None


def _group_events(items: tuple[DeliveryEvent, ...]) -> dict[_EventKey, list[DeliveryEvent]]:
    """The receipt's events by storage key, in order of first appearance."""
    grouped: dict[_EventKey, list[DeliveryEvent]] = {}
    for ev in items:
        grouped.setdefault((ev.message_id, ev.status, ev.event_time, ev.part), []).append(ev)
    return grouped


def _lock_message(conn: Connection, message_id: str, received_at: datetime, now: datetime) -> None:
    """Hold ``message_id``'s row lock until commit, creating a placeholder row when missing.

    The placeholder is filled in by :func:`_refresh_message` in the same transaction. A
    concurrent purge may delete the row between the insert and the lock: then try again.
    """
    lock = select(messages.c.message_id).where(messages.c.message_id == message_id)
    for _ in range(_LOCK_ATTEMPTS):
        if conn.execute(lock.with_for_update()).first() is not None:
            return
        conn.execute(
            insert_for(conn, messages)
            .values(
                message_id=message_id,
                is_final=False,
                event_count=0,
                duplicate_count=0,
                first_received_at=received_at,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=[messages.c.message_id])
        )
    raise LedgerUnavailable("a message row kept being deleted while recording; retry")


def _insert_event(
    conn: Connection, ev: DeliveryEvent, received_at: datetime, receipt_id: str
) -> bool:
    stmt = (
        insert_for(conn, events)
        .values(
            message_id=ev.message_id,
            status=ev.status,
            event_time=ev.event_time,
            part=ev.part,
            total_parts=ev.total_parts,
            status_code=ev.status_code,
            channel=ev.channel,
            customer_message_id=ev.customer_message_id,
            phone=ev.phone,
            error=ev.error,
            shape=ev.shape.value,
            price=ev.price,
            naive_time=ev.naive_time,
            raw=ev.raw,
            received_at=received_at,
            receipt_id=receipt_id,
            duplicates=0,
        )
        .on_conflict_do_nothing(
            index_elements=[
                events.c.message_id,
                events.c.status,
                events.c.event_time,
                events.c.part,
            ]
        )
        .returning(events.c.id)
    )
    return conn.execute(stmt).first() is not None


def _add_event_duplicates(conn: Connection, key: _EventKey, count: int) -> None:
    message_id, status, event_time, part = key
    conn.execute(
        update(events)
        .where(
            events.c.message_id == message_id,
            events.c.status == status,
            events.c.event_time == event_time,
            events.c.part == part,
        )
        .values(duplicates=events.c.duplicates + count)
    )


def _add_message_duplicates(conn: Connection, message_id: str, count: int) -> None:
    conn.execute(
        update(messages)
        .where(messages.c.message_id == message_id)
        .values(duplicate_count=messages.c.duplicate_count + count)
    )


def _remember_channels(conn: Connection, names: set[str], now: datetime) -> None:
    for name in sorted(names):  # sorted: concurrent first sightings wait in one order
        conn.execute(
            insert_for(conn, channels)
            .values(channel=name, first_seen_at=now)
            .on_conflict_do_nothing(index_elements=[channels.c.channel])
        )


def _refresh_message(
    conn: Connection, message_id: str, extra_copies: int, now: datetime
) -> LatencyObservation | None:
    """Recompute the message's state from all its events; report its latency the first time."""
    rows = conn.execute(
        select(
            events.c.status,
            events.c.event_time,
            events.c.part,
            events.c.channel,
            events.c.customer_message_id,
            events.c.phone,
            events.c.error,
        ).where(events.c.message_id == message_id)
    ).all()
    stored = [
        _StoredEvent(
            status=row.status,
            event_time=row.event_time,
            part=row.part,
            channel=row.channel,
            customer_message_id=row.customer_message_id,
            phone=row.phone,
            error=row.error,
        )
        for row in rows
    ]
    state = reduce_state(stored)
    conn.execute(
        update(messages)
        .where(messages.c.message_id == message_id)
        .values(
            status=state.status,
            status_time=state.status_time,
            is_final=state.is_final,
            sent_at=state.sent_at,
            final_at=state.final_at,
            read_at=state.read_at,
            channel=state.channel,
            customer_message_id=state.customer_message_id,
            phone=state.phone,
            error=state.error,
            latency_seconds=state.latency_seconds,
            event_count=len(stored),
            duplicate_count=messages.c.duplicate_count + extra_copies,
            updated_at=now,
        )
    )
    seconds = state.latency_seconds
    if seconds is None or state.status is None:
        return None
    first_time = conn.execute(
        update(messages)
        .where(messages.c.message_id == message_id, messages.c.latency_observed_at.is_(None))
        .values(latency_observed_at=now)
    ).rowcount
    if first_time != 1:
        return None
    return LatencyObservation(channel=state.channel, outcome=state.status, seconds=seconds)


def _record_inbound(
    conn: Connection, items: tuple[InboundMessage, ...], received_at: datetime, receipt_id: str
) -> tuple[int, int]:
    """Insert-or-ignore each reply by ``inbound_id``; returns (new, duplicate) counts."""
    grouped: dict[str, list[InboundMessage]] = {}
    for item in items:
        grouped.setdefault(item.inbound_id, []).append(item)
    new = duplicate = 0
    for inbound_id in sorted(grouped):  # sorted: concurrent inserts wait in one order
        same = grouped[inbound_id]
        first = same[0]
        inserted = (
            conn.execute(
                insert_for(conn, inbound)
                .values(
                    inbound_id=inbound_id,
                    event_time=first.event_time,
                    channel=first.channel,
                    source=first.source,
                    destination=first.destination,
                    text=first.text,
                    message_type=first.message_type,
                    naive_time=first.naive_time,
                    raw=first.raw,
                    received_at=received_at,
                    receipt_id=receipt_id,
                    duplicates=0,
                )
                .on_conflict_do_nothing(index_elements=[inbound.c.inbound_id])
                .returning(inbound.c.inbound_id)
            ).first()
            is not None
        )
        repeats = len(same) - 1 if inserted else len(same)
        new += int(inserted)
        duplicate += repeats
        if repeats:
            conn.execute(
                update(inbound)
                .where(inbound.c.inbound_id == inbound_id)
                .values(duplicates=inbound.c.duplicates + repeats)
            )
    return new, duplicate
