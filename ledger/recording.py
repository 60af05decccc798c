"""Recording receipts: one transaction for a batch of them, idempotent by construction.

1. Each receipt id is inserted (insert-or-ignore); a receipt id already there, or repeated
   earlier in the batch, is ``already_recorded`` and contributes nothing else.
2. Every message the claimed receipts touch gets its ``messages`` row locked, in ascending
   message_id order: its full row, computed from the batch's events alone, is inserted
   (insert-or-ignore), then ``SELECT ... FOR UPDATE`` locks the rows that already existed.
   Events of a message are only ever written while holding that lock (purge follows the
   same rule, and deletes a message with its last event), so a row created here is the
   message's whole state, and the events read below are every committed event of the
   others. The fixed order rules out deadlocks between writers: an insert waits only on
   another writer's uncommitted insert of the same id, which that writer made in the same
   order, and a writer's uncommitted rows are invisible to the others' ``SELECT``. On SQLite
   the transaction began with ``BEGIN IMMEDIATE``: writers are serialised and the row locks
   are moot.
3. The stored events of the messages that existed are read. Each distinct event of the batch
   that none of them has is inserted, keyed by (message_id, status, event_time, part): the
   receipt that carries it first in the batch stores it; every other copy, and every copy of
   an event stored before, only raises that event's ``duplicates`` and its message's
   ``duplicate_count``. The inserted events are also counted by minute of receipt, channel
   and status in ``event_minutes`` (:mod:`ledger.rollup`).
4. Each existing message that gained an event gets its state recomputed from all its events
   with :func:`qlara.reduce_state`. The sent -> final latency is reported once per message:
   by the first transaction that sets ``latency_observed_at`` (read and set under the row
   lock, or set in the row created), in the result of the first receipt of the batch after
   which it was known.
5. Inbound replies go to their own table, insert-or-ignore by ``inbound_id``, in ascending
   order across the batch.

Results are exactly what recording the receipts one by one, in batch order, would give.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Integer, Update, bindparam, select, update

from ledger import places, rollup
from ledger.bulk import execute_mappings
from ledger.errors import LedgerUnavailable
from ledger.joining import fold_placeholder, join_customer_ids
from ledger.results import LatencyObservation, RecordResult
from ledger.schema import channels, events, inbound, messages, receipts
from ledger.timestamps import from_unix
from ledger.upsert import insert_for
from qlara import (
    DeliveryEvent,
    InboundMessage,
    Receipt,
    Source,
    StatusEvent,
    destination,
    reduce_state,
)

#: How often to retry locking message rows that a concurrent purge keeps deleting.
_LOCK_ATTEMPTS = 5
#: The most rows one multi-row INSERT ... RETURNING carries, and the most ids one ``IN`` list
#: holds. A statement's SQL text depends on how many rows or ids it carries, and the driver
#: prepares and caches each distinct text on its own (Python's sqlite3 keeps 128 per
#: connection, evicting the least recently used). With the batch's size in the text, every
#: group size made new statements, larger ones for larger groups: the worker's SQLite
#: statements took about 6 MiB per connection, re-prepared as they were evicted, and a backlog's
#: big groups raised its heap for good. So these counts are powers of two, a few shapes for
#: every batch: rows go in pieces of 64, 32, ..., 1 (:func:`_pieces`), and an ``IN`` list is
#: padded by repeating its last id (:func:`_id_lists`), which changes no result. 64 rows of 17
#: columns stay far below SQLite's and PostgreSQL's bound-parameter limits (32,766 and 65,535).
_MOST_ROWS = 64
_MOST_IDS = 512

_EventKey = tuple[str, str, datetime, int]
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class _StoredEvent:
    """What :func:`qlara.reduce_state` needs of a stored event."""

    status: str
    event_time: datetime
    part: int
    total_parts: int
    channel: str | None
    customer_message_id: str | None
    phone: str | None
    error: str | None
    #: Who reported it: a polled status ranks below the webhook's (qlara.status.rank).
    source: str
    #: What Qlara charged for it (the SMS Universal callback's ``price``), if it says.
    price: float | None

    @classmethod
    def of(cls, source: Any) -> _StoredEvent:
        """From an events row, or from the DeliveryEvent that is about to be one."""
        return cls(
            source=str(source.source),
            status=source.status,
            event_time=source.event_time,
            part=source.part,
            total_parts=source.total_parts,
            channel=source.channel,
            customer_message_id=source.customer_message_id,
            phone=source.phone,
            error=source.error,
            price=source.price,
        )


@dataclass(slots=True)
class _Outcome:
    """What one claimed receipt of the batch changed, filled in as the batch is applied."""

    receipt: Receipt
    received_at: datetime
    #: Position in the batch.
    order: int
    #: The receipt's events by storage key, in order of first appearance.
    copies: dict[_EventKey, list[DeliveryEvent]]
    new_events: list[DeliveryEvent] = field(default_factory=list)
    duplicate_events: list[DeliveryEvent] = field(default_factory=list)
    new_inbound: int = 0
    duplicate_inbound: int = 0
    latencies: list[LatencyObservation] = field(default_factory=list)

    def result(self) -> RecordResult:
        return RecordResult(
            already_recorded=False,
            new_events=self.new_events,
            duplicate_events=self.duplicate_events,
            new_inbound=self.new_inbound,
            duplicate_inbound=self.duplicate_inbound,
            latencies=self.latencies,
        )


def record_receipt(conn: Connection, receipt: Receipt, now: datetime) -> RecordResult:
    """Record ``receipt`` inside the transaction open on ``conn`` (see the module docstring)."""
    return record_receipts(conn, [receipt], now)[0]


def record_receipts(
    conn: Connection, batch: Sequence[Receipt], now: datetime
) -> list[RecordResult]:
    """Record ``batch`` inside the transaction open on ``conn``: one result per receipt, in
    batch order (see the module docstring)."""
    firsts: dict[str, int] = {}
    for index, receipt in enumerate(batch):
        firsts.setdefault(receipt.receipt_id, index)
    claimed = _claim_receipts(conn, [batch[i] for i in firsts.values()], now)
    indexes = [index for index in firsts.values() if batch[index].receipt_id in claimed]
    joins = join_customer_ids(conn, [batch[index] for index in indexes])
    outcomes = {
        index: _Outcome(
            receipt, from_unix(receipt.received_at), index, _group_events(receipt.events)
        )
        for index, receipt in zip(indexes, joins.receipts, strict=True)
    }
    applied = list(outcomes.values())
    if applied:
        _record_events(conn, applied, now, joins.merges)
        _record_inbound(conn, applied)
    return [
        outcomes[index].result() if index in outcomes else _already_recorded()
        for index in range(len(batch))
    ]


def _already_recorded() -> RecordResult:
    return RecordResult(
        already_recorded=True,
        new_events=[],
        duplicate_events=[],
        new_inbound=0,
        duplicate_inbound=0,
        latencies=[],
    )


def _pieces(items: Sequence[_T], most: int = _MOST_ROWS) -> Iterator[Sequence[_T]]:
    """``items`` in consecutive pieces, in order, each a power of two long and at most
    ``most`` (a power of two): 100 rows go as 64, 32 and 4."""
    start = 0
    while start < len(items):
        size = min(most, 1 << ((len(items) - start).bit_length() - 1))
        yield items[start : start + size]
        start += size


def _id_lists(ids: Sequence[str], most: int = _MOST_IDS) -> Iterator[list[str]]:
    """``ids`` in consecutive lists of at most ``most`` (a power of two), each padded to a
    power of two by repeating its last id: for an ``IN`` list, where a repeat changes nothing."""
    for start in range(0, len(ids), most):
        chunk = list(ids[start : start + most])
        chunk.extend(chunk[-1:] * ((1 << (len(chunk) - 1).bit_length()) - len(chunk)))
        yield chunk


def _claim_receipts(conn: Connection, batch: Sequence[Receipt], now: datetime) -> set[str]:
    """Insert-or-ignore each receipt id (all distinct); the ids inserted now."""
    if not batch:
        return set()
    stmt = (
        insert_for(conn, receipts)
        .on_conflict_do_nothing(index_elements=[receipts.c.receipt_id])
        .returning(receipts.c.receipt_id)
    )
    rows = [
        {
            "receipt_id": receipt.receipt_id,
            "received_at": from_unix(receipt.received_at),
            "recorded_at": now,
        }
        for receipt in sorted(batch, key=lambda r: r.receipt_id)  # one order for every writer
    ]
    claimed: set[str] = set()
    for piece in _pieces(rows):
        claimed.update(conn.execute(stmt, piece).scalars())
    return claimed


def _group_events(items: tuple[DeliveryEvent, ...]) -> dict[_EventKey, list[DeliveryEvent]]:
    grouped: dict[_EventKey, list[DeliveryEvent]] = {}
    for ev in items:
        grouped.setdefault((ev.message_id, ev.status, ev.event_time, ev.part), []).append(ev)
    return grouped


def _key(ev: DeliveryEvent | _StoredEvent, message_id: str) -> _EventKey:
    return (message_id, ev.status, ev.event_time, ev.part)


def _record_events(
    conn: Connection, outcomes: list[_Outcome], now: datetime, merges: dict[str, str]
) -> None:
    owners: dict[_EventKey, _Outcome] = {}
    first_received: dict[str, datetime] = {}
    for outcome in outcomes:
        for key in outcome.copies:
            owners.setdefault(key, outcome)
            first_received.setdefault(key[0], outcome.received_at)
    if not owners:
        return
    keys_of: dict[str, list[_EventKey]] = {}
    for key in owners:
        keys_of.setdefault(key[0], []).append(key)
    fresh = {
        message_id: _FreshMessage.of(message_id, keys, owners, first_received[message_id], now)
        for message_id, keys in keys_of.items()
    }
    observed, created, before = _lock_messages(conn, fresh, sorted(merges))
    message_extra: Counter[str] = Counter()
    folded: set[str] = set()
    for placeholder in sorted(merges):
        if placeholder not in observed:  # purged meanwhile
            continue
        target = merges[placeholder]
        message_extra[target] += fold_placeholder(conn, placeholder, target)
        folded.add(target)
        if target in created:  # its fresh row lacks the placeholder's events: recompute it
            created.discard(target)
            observed[target] = None
    stored = _stored_events(conn, sorted(m for m in first_received if m not in created))
    known = {_key(ev, message_id) for message_id, evs in stored.items() for ev in evs}
    inserted = {key for key in owners if key not in known}
    _insert_events(conn, [(owners[key], owners[key].copies[key][0]) for key in inserted])

    event_extra: Counter[_EventKey] = Counter()
    for outcome in outcomes:
        for key, same in outcome.copies.items():
            if key in inserted and owners[key] is outcome:
                outcome.new_events.append(same[0])
                repeats = same[1:]
            else:
                repeats = same
            if repeats:
                outcome.duplicate_events.extend(repeats)
                event_extra[key] += len(repeats)
                message_extra[key[0]] += len(repeats)
    _add_event_duplicates(conn, event_extra)
    _remember_channels(
        conn, {ev.channel for ev in _new_events(outcomes) if ev.channel is not None}, now
    )
    changed = sorted({key[0] for key in inserted if key[0] not in created} | folded)
    after: dict[str, Mapping[str, Any]] = {m: fresh[m].row for m in created}
    found = _refresh_messages(
        conn, changed, stored, owners, inserted, observed, message_extra, now, before, after
    )
    found.update((m, fresh[m].latency) for m in created)
    # What this transaction moved in the per-hour counts: the changed and created messages
    # as they are now, against what they were (a folded placeholder is gone)
    gone = {m for m in merges if m in before}
    places.record_moves(conn, {m: before[m] for m in after.keys() | gone if m in before}, after)
    for message_id in sorted(found):  # one order, however the batch was split
        latency = found[message_id]
        if latency is not None:
            outcome, observation = latency
            outcome.latencies.append(observation)
    refreshed = set(changed)
    _add_message_duplicates(conn, {m: n for m, n in message_extra.items() if m not in refreshed})


@dataclass(slots=True)
class _FreshMessage:
    """A message's full row as it is when the batch's events are all it has, with the
    latency observation it then reports: used when the batch creates the message."""

    row: dict[str, Any]
    latency: tuple[_Outcome, LatencyObservation] | None

    @classmethod
    def of(
        cls,
        message_id: str,
        keys: list[_EventKey],
        owners: dict[_EventKey, _Outcome],
        first_received: datetime,
        now: datetime,
    ) -> _FreshMessage:
        rows = [_StoredEvent.of(owners[key].copies[key][0]) for key in keys]
        state = reduce_state(rows)
        latency = None
        if state.latency_seconds is not None:
            latency = _first_latency(message_id, rows, owners, set(keys))
        where = destination(state.phone)
        row = {
            "message_id": message_id,
            "status": state.status,
            "status_time": state.status_time,
            "is_final": state.is_final,
            "sent_at": state.sent_at,
            "final_at": state.final_at,
            "read_at": state.read_at,
            "channel": state.channel,
            "customer_message_id": state.customer_message_id,
            "phone": state.phone,
            "error": state.error,
            "latency_seconds": state.latency_seconds,
            "latency_observed_at": now if latency is not None else None,
            "event_count": len(keys),
            "country": where.country,
            "operator": where.operator,
            "price": _price(rows),
            "duplicate_count": 0,
            "first_received_at": first_received,
            "updated_at": now,
        }
        return cls(row, latency)


def _new_events(outcomes: list[_Outcome]) -> Iterator[DeliveryEvent]:
    for outcome in outcomes:
        yield from outcome.new_events


def _lock_messages(
    conn: Connection, fresh: dict[str, _FreshMessage], placeholders: Sequence[str] = ()
) -> tuple[dict[str, datetime | None], set[str], dict[str, Any]]:
    """Hold the row lock of every message in ``fresh`` until commit, inserting its fresh
    row where none exists, and of each of ``placeholders`` that still exists (about to be
    folded into a message: :mod:`ledger.joining`); returns each existing message's
    ``latency_observed_at``, the
    messages whose row was created here (they have no stored event yet: events are only
    written under their message's row, and purge deletes a message with its last event, so
    the fresh row, made of the batch's events alone, is the message's state), and each
    existing message's :data:`ledger.places.COLUMNS` as they were before this transaction.

    A row inserted here is locked by the insert itself; only the others are selected
    ``FOR UPDATE``. A concurrent purge may delete a row between the insert and the lock:
    then try again.
    """
    locked: dict[str, datetime | None] = {}
    before: dict[str, Any] = {}
    created: set[str] = set()
    missing = sorted(fresh)
    lock_only = set(placeholders) - fresh.keys()
    insert = (
        insert_for(conn, messages)
        .on_conflict_do_nothing(index_elements=[messages.c.message_id])
        .returning(messages.c.message_id)
    )
    for _ in range(_LOCK_ATTEMPTS):
        now_created: set[str] = set()
        new_rows = [fresh[message_id].row for message_id in missing if message_id in fresh]
        for piece in _pieces(new_rows):
            now_created.update(conn.execute(insert, piece).scalars())
        created |= now_created
        existing = sorted(
            {message_id for message_id in missing if message_id not in now_created} | lock_only
        )
        for chunk in _id_lists(existing):
            rows = conn.execute(
                select(
                    messages.c.message_id,
                    messages.c.latency_observed_at,
                    messages.c.phone,
                    *places.COLUMNS,
                )
                .where(messages.c.message_id.in_(chunk))
                .order_by(messages.c.message_id)
                .with_for_update()
            ).all()
            locked.update((row.message_id, row.latency_observed_at) for row in rows)
            before.update((row.message_id, row._mapping) for row in rows)
        missing = [m for m in missing if m not in locked and m not in created]
        lock_only = set()  # a placeholder gone was purged: nothing to fold
        if not missing:
            return locked, created, before
    raise LedgerUnavailable("a message row kept being deleted while recording; retry")


#: The events insert sets every column but the id: a row that does not name them all, as
#: after a migration adds a column, is refused (:func:`ledger.bulk.execute_mappings`).
_EVENT_KEYS = [column.key for column in events.c if column.key != "id"]
_INSERT_EVENT = events.insert().inline()


def _insert_events(conn: Connection, firsts: list[tuple[_Outcome, DeliveryEvent]]) -> None:
    """Insert each event: all of distinct keys that no stored event has (their messages are
    locked, so none can have been stored meanwhile)."""
    rows = [_event_row(outcome, ev) for outcome, ev in firsts]
    execute_mappings(conn, _INSERT_EVENT, _EVENT_KEYS, rows)
    # The per-minute counts chart what Qlara's webhook reported: the application's sends
    # and the reconciler's polls are not in them.
    rollup.append(
        conn,
        rollup.count_minutes(
            (outcome.received_at, ev.channel, ev.status)
            for outcome, ev in firsts
            if ev.source is Source.WEBHOOK
        ),
    )


def _event_row(outcome: _Outcome, ev: DeliveryEvent) -> dict[str, Any]:
    """The events row of ``ev``, stored by ``outcome``'s receipt: :data:`_EVENT_KEYS`."""
    return {
        "message_id": ev.message_id,
        "status": ev.status,
        "event_time": ev.event_time,
        "part": ev.part,
        "total_parts": ev.total_parts,
        "status_code": ev.status_code,
        "channel": ev.channel,
        "customer_message_id": ev.customer_message_id,
        "phone": ev.phone,
        "error": ev.error,
        "shape": ev.shape.value,
        "price": ev.price,
        "naive_time": ev.naive_time,
        "raw": ev.raw,
        "received_at": outcome.received_at,
        "receipt_id": outcome.receipt.receipt_id,
        "duplicates": 0,
        "time_from_receipt": ev.time_from_receipt,
        "source": ev.source.value,
    }


def _add_event_duplicates(conn: Connection, extra: Counter[_EventKey]) -> None:
    if not extra:
        return
    conn.execute(
        update(events)
        .where(
            events.c.message_id == bindparam("k_message_id"),
            events.c.status == bindparam("k_status"),
            events.c.event_time == bindparam("k_event_time"),
            events.c.part == bindparam("k_part"),
        )
        .values(duplicates=events.c.duplicates + bindparam("k_extra", type_=Integer)),
        [
            {
                "k_message_id": message_id,
                "k_status": status,
                "k_event_time": event_time,
                "k_part": part,
                "k_extra": count,
            }
            for (message_id, status, event_time, part), count in extra.items()
        ],
    )


def _add_message_duplicates(conn: Connection, extra: dict[str, int]) -> None:
    if not extra:
        return
    conn.execute(
        update(messages)
        .where(messages.c.message_id == bindparam("k_message_id"))
        .values(duplicate_count=messages.c.duplicate_count + bindparam("k_extra", type_=Integer)),
        [{"k_message_id": m, "k_extra": n} for m, n in extra.items()],
    )


def _remember_channels(conn: Connection, names: set[str], now: datetime) -> None:
    if not names:
        return
    conn.execute(
        insert_for(conn, channels).on_conflict_do_nothing(index_elements=[channels.c.channel]),
        # sorted: concurrent first sightings wait in one order
        [{"channel": name, "first_seen_at": now} for name in sorted(names)],
    )


def _stored_events(conn: Connection, message_ids: list[str]) -> dict[str, list[_StoredEvent]]:
    stored: dict[str, list[_StoredEvent]] = {message_id: [] for message_id in message_ids}
    for chunk in _id_lists(message_ids):
        rows = conn.execute(
            select(
                events.c.message_id,
                events.c.status,
                events.c.event_time,
                events.c.part,
                events.c.total_parts,
                events.c.channel,
                events.c.customer_message_id,
                events.c.phone,
                events.c.error,
                events.c.source,
                events.c.price,
            ).where(events.c.message_id.in_(chunk))
        )
        for row in rows:
            stored[row.message_id].append(_StoredEvent.of(row))
    return stored


def _message_update() -> tuple[Update, list[str]]:
    """The UPDATE that sets a message's recomputed state, and the parameters each of its rows
    names."""
    c = messages.c
    state = [
        "status",
        "status_time",
        "is_final",
        "sent_at",
        "final_at",
        "read_at",
        "channel",
        "customer_message_id",
        "phone",
        "error",
        "latency_seconds",
        "latency_observed_at",
        "country",
        "operator",
        "price",
        "event_count",
    ]
    values: dict[str, Any] = {name: bindparam(f"k_{name}", type_=c[name].type) for name in state}
    values["duplicate_count"] = c.duplicate_count + bindparam("k_extra", type_=Integer)
    values["updated_at"] = bindparam("k_updated_at", type_=c.updated_at.type)
    stmt = update(messages).where(c.message_id == bindparam("k_message_id")).values(values)
    return stmt, [f"k_{name}" for name in state] + ["k_extra", "k_updated_at", "k_message_id"]


_UPDATE_MESSAGE, _UPDATE_MESSAGE_KEYS = _message_update()


def _refresh_messages(
    conn: Connection,
    changed: list[str],
    stored: dict[str, list[_StoredEvent]],
    owners: dict[_EventKey, _Outcome],
    inserted: set[_EventKey],
    observed: dict[str, datetime | None],
    extra: Counter[str],
    now: datetime,
    before: Mapping[str, Mapping[Any, Any]],
    after: dict[str, Mapping[str, Any]],
) -> dict[str, tuple[_Outcome, LatencyObservation] | None]:
    """Recompute each changed message's state from its ``stored`` events (read before this
    batch's) and those ``inserted`` now; returns, for each, the latency it reports the first
    time it is known, with the receipt after which it was. Each new row's
    :data:`ledger.places.COLUMNS` go into ``after``; ``before`` holds the rows as they were
    (a destination is looked up again only when the phone changed)."""
    found: dict[str, tuple[_Outcome, LatencyObservation] | None] = {}
    if not changed:
        return found
    rows_of: dict[str, list[_StoredEvent]] = {m: list(stored.get(m, ())) for m in changed}
    for key in inserted:
        if key[0] in rows_of:
            rows_of[key[0]].append(_StoredEvent.of(owners[key].copies[key][0]))
    updates: list[dict[str, Any]] = []
    for message_id in changed:
        rows = rows_of[message_id]
        state = reduce_state(rows)
        observed_at = observed[message_id]
        if observed_at is None and state.latency_seconds is not None:
            found[message_id] = _first_latency(message_id, rows, owners, inserted)
            if found[message_id] is not None:
                observed_at = now
        was = before.get(message_id)
        if was is not None and was["phone"] == state.phone:
            country, operator = was["country"], was["operator"]
        else:
            where = destination(state.phone)
            country, operator = where.country, where.operator
        price = _price(rows)
        after[message_id] = {
            "updated_at": now,
            "country": country,
            "operator": operator,
            "channel": state.channel,
            "status": state.status,
            "price": price,
            "latency_seconds": state.latency_seconds,
        }
        updates.append(
            {
                "k_status": state.status,
                "k_status_time": state.status_time,
                "k_is_final": state.is_final,
                "k_sent_at": state.sent_at,
                "k_final_at": state.final_at,
                "k_read_at": state.read_at,
                "k_channel": state.channel,
                "k_customer_message_id": state.customer_message_id,
                "k_phone": state.phone,
                "k_error": state.error,
                "k_latency_seconds": state.latency_seconds,
                "k_latency_observed_at": observed_at,
                "k_country": country,
                "k_operator": operator,
                "k_price": price,
                "k_event_count": len(rows),
                "k_extra": extra[message_id],
                "k_updated_at": now,
                "k_message_id": message_id,
            }
        )
    execute_mappings(conn, _UPDATE_MESSAGE, _UPDATE_MESSAGE_KEYS, updates)
    return found


def _price(rows: Sequence[_StoredEvent]) -> float | None:
    """A message's price: the sum of its distinct events' prices, ``None`` when none carries
    one."""
    prices = [row.price for row in rows if row.price is not None]
    return sum(prices) if prices else None


def _first_latency(
    message_id: str,
    rows: list[_StoredEvent],
    owners: dict[_EventKey, _Outcome],
    inserted: set[_EventKey],
) -> tuple[_Outcome, LatencyObservation] | None:
    """The first receipt of the batch after which the message's latency was known, with the
    latency as it was then: what recording the batch one receipt at a time would report."""
    known: list[StatusEvent] = []
    added: dict[int, list[StatusEvent]] = {}
    contributors: dict[int, _Outcome] = {}
    for row in rows:
        key = _key(row, message_id)
        if key in inserted:
            owner = owners[key]
            added.setdefault(id(owner), []).append(row)
            contributors[id(owner)] = owner
        else:
            known.append(row)
    for ref, outcome in sorted(contributors.items(), key=lambda item: item[1].order):
        known.extend(added[ref])
        state = reduce_state(known)
        if state.latency_seconds is not None and state.status is not None:
            observation = LatencyObservation(
                channel=state.channel,
                outcome=state.status,
                seconds=state.latency_seconds,
                country=destination(state.phone).country,
            )
            return outcome, observation
    return None


def _record_inbound(conn: Connection, outcomes: list[_Outcome]) -> None:
    """Insert-or-ignore each reply by ``inbound_id``, counting new and duplicate copies in
    the results of the receipts that carried them."""
    copies: dict[str, list[tuple[_Outcome, InboundMessage]]] = {}
    for outcome in outcomes:
        for item in outcome.receipt.inbound:
            copies.setdefault(item.inbound_id, []).append((outcome, item))
    if not copies:
        return
    ordered = sorted(copies)  # sorted: concurrent inserts wait in one order
    rows = []
    for inbound_id in ordered:
        outcome, first = copies[inbound_id][0]
        rows.append(
            {
                "inbound_id": inbound_id,
                "event_time": first.event_time,
                "channel": first.channel,
                "source": first.source,
                "destination": first.destination,
                "text": first.text,
                "message_type": first.message_type,
                "naive_time": first.naive_time,
                "raw": first.raw,
                "received_at": outcome.received_at,
                "receipt_id": outcome.receipt.receipt_id,
                "duplicates": 0,
                "time_from_receipt": first.time_from_receipt,
            }
        )
    insert = (
        insert_for(conn, inbound)
        .on_conflict_do_nothing(index_elements=[inbound.c.inbound_id])
        .returning(inbound.c.inbound_id)
    )
    inserted: set[str] = set()
    for piece in _pieces(rows):
        inserted.update(conn.execute(insert, piece).scalars())
    extra: dict[str, int] = {}
    for inbound_id in ordered:
        same = copies[inbound_id]
        if inbound_id in inserted:
            same[0][0].new_inbound += 1
            same = same[1:]
        for outcome, _ in same:
            outcome.duplicate_inbound += 1
        if same:
            extra[inbound_id] = len(same)
    if extra:
        conn.execute(
            update(inbound)
            .where(inbound.c.inbound_id == bindparam("k_inbound_id"))
            .values(duplicates=inbound.c.duplicates + bindparam("k_extra", type_=Integer)),
            [{"k_inbound_id": i, "k_extra": n} for i, n in extra.items()],
        )
