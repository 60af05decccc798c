"""Joining a send the application named by ``customerMessageId`` alone to its message.

Qlara's webhooks always name the ``messageId``; shapes A and B also carry the application's
``customerMessageId`` (both are unique per account). An application may report a send by
either id (``POST /v1/sends``). The rule:

- A send that names a ``messageId`` is an event of that message, like any webhook's.
- An event that names both ids *binds* the ``customerMessageId`` to the ``messageId`` (the
  first binding wins: a second ``messageId`` for the same ``customerMessageId`` is a reuse
  the ledger does not follow, and its events stay with their own message).
- A send that names the ``customerMessageId`` alone is an event of the message it is bound
  to. While it is bound to none, the send is recorded under a placeholder message
  (:func:`qlara.placeholder_id`, ``cmid:<customerMessageId>``): pending, visible, stuck
  after its threshold like any other. The event that binds it later moves the placeholder's
  events into the message and deletes the placeholder, in the same transaction.
- Shape C (SMS Universal) names only the ``messageId``: its sends must name it too.

Concurrency: every recording transaction first takes the ``customer_ids`` row of each
``customerMessageId`` its events name (insert-or-ignore, then ``SELECT ... FOR UPDATE``,
in ascending order), before any ``messages`` row. Two transactions that involve the same
``customerMessageId`` are therefore serialised, whichever is a send and whichever the
binding event, and the order (customer ids, then messages in ascending id) is the same for
every writer. Purge takes only ``messages`` rows and deletes ``customer_ids`` rows in a
transaction of their own, after, so it never waits on a writer while holding what that
writer waits for.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import msgspec
from sqlalchemy import Connection, and_, delete, exists, not_, or_, select, update

from ledger.schema import customer_ids, events, messages
from ledger.upsert import insert_for
from qlara import PLACEHOLDER_PREFIX, Receipt, placeholder_id


@dataclass(slots=True)
class Joins:
    """What :func:`join_customer_ids` decided for a batch.

    ``receipts``: the batch with each send named by ``customerMessageId`` alone moved to its
    bound message. ``merges``: placeholder id by the message id it is folded into.
    """

    receipts: list[Receipt]
    merges: dict[str, str] = field(default_factory=dict)


def join_customer_ids(conn: Connection, batch: Sequence[Receipt]) -> Joins:
    """Lock the ``customer_ids`` rows the batch's events name, bind what they bind, and
    return the batch with its placeholder sends moved to their messages (see the module
    docstring). Runs inside the recording transaction, before any message row is locked.
    """
    binds: dict[str, str] = {}  # customer id -> the first message id the batch binds it to
    alone: set[str] = set()  # customer ids of sends named by them alone
    for receipt in batch:
        for ev in receipt.events:
            customer_id = ev.customer_message_id
            if customer_id is None:
                continue
            if ev.by_customer_id_only:
                alone.add(customer_id)
            else:
                binds.setdefault(customer_id, ev.message_id)
    named = sorted(binds.keys() | alone)
    if not named:
        return Joins(list(batch))
    bound, new = _lock(conn, named, binds)

    # Sends named by a customer id with no binding yet may belong to a message recorded
    # before customer ids were kept (or whose binding row a purge removed): look it up.
    unbound = sorted(c for c in alone if bound.get(c) is None and c not in binds)
    for customer_id, message_id in _messages_named(conn, unbound).items():
        bound[customer_id] = message_id
        _bind(conn, customer_id, message_id)

    # A binding made now folds the placeholder of an earlier send, if there is one.
    merges: dict[str, str] = {}
    for customer_id in sorted(binds):
        if bound.get(customer_id) is None:
            bound[customer_id] = binds[customer_id]
            _bind(conn, customer_id, binds[customer_id])
        elif customer_id not in new:
            continue
        merges[placeholder_id(customer_id)] = binds[customer_id]
    present = _existing(conn, sorted(merges))
    merges = {p: m for p, m in merges.items() if p in present}

    moved = {placeholder_id(c): m for c, m in bound.items() if m is not None and c in alone}
    receipts = [_moved(receipt, moved) for receipt in batch] if moved else list(batch)
    return Joins(receipts, merges)


def _lock(
    conn: Connection, named: list[str], binds: dict[str, str]
) -> tuple[dict[str, str | None], set[str]]:
    """Insert-or-ignore then lock each customer id's row: the message id each is bound to,
    and the customer ids whose row was inserted now."""
    insert = (
        insert_for(conn, customer_ids)
        .on_conflict_do_nothing(index_elements=[customer_ids.c.customer_message_id])
        .returning(customer_ids.c.customer_message_id)
    )
    new: set[str] = set()
    for chunk in _chunks(named, 64):
        values = [{"customer_message_id": c, "message_id": binds.get(c)} for c in chunk]
        new.update(conn.execute(insert, values).scalars())
    bound: dict[str, str | None] = {}
    for chunk in _chunks(named):
        rows = conn.execute(
            select(customer_ids.c.customer_message_id, customer_ids.c.message_id)
            .where(customer_ids.c.customer_message_id.in_(chunk))
            .order_by(customer_ids.c.customer_message_id)
            .with_for_update()
        )
        bound.update((row.customer_message_id, row.message_id) for row in rows)
    return bound, new


def _bind(conn: Connection, customer_id: str, message_id: str) -> None:
    conn.execute(
        update(customer_ids)
        .where(customer_ids.c.customer_message_id == customer_id)
        .values(message_id=message_id)
    )


def _messages_named(conn: Connection, customer_ids_: list[str]) -> dict[str, str]:
    """For each customer id, the (lowest) real message id recorded with it, if any."""
    found: dict[str, str] = {}
    for chunk in _chunks(customer_ids_):
        rows = conn.execute(
            select(messages.c.customer_message_id, messages.c.message_id)
            .where(
                messages.c.customer_message_id.in_(chunk),
                not_(messages.c.message_id.startswith(PLACEHOLDER_PREFIX, autoescape=True)),
            )
            .order_by(messages.c.customer_message_id, messages.c.message_id)
        )
        for row in rows:
            found.setdefault(row.customer_message_id, row.message_id)
    return found


def _existing(conn: Connection, message_ids: list[str]) -> set[str]:
    out: set[str] = set()
    for chunk in _chunks(message_ids):
        out.update(
            conn.execute(
                select(messages.c.message_id).where(messages.c.message_id.in_(chunk))
            ).scalars()
        )
    return out


def _moved(receipt: Receipt, moved: dict[str, str]) -> Receipt:
    if not any(ev.message_id in moved for ev in receipt.events):
        return receipt
    return msgspec.structs.replace(
        receipt,
        events=tuple(
            msgspec.structs.replace(ev, message_id=moved[ev.message_id])
            if ev.by_customer_id_only and ev.message_id in moved
            else ev
            for ev in receipt.events
        ),
    )


def fold_placeholder(conn: Connection, placeholder: str, message_id: str) -> int:
    """Move a locked placeholder's events into the locked message ``message_id`` and delete
    the placeholder. An event the message already has (same status, time and part) is not
    moved: its copies are added to the message's event's ``duplicates``. Returns the
    duplicates the message gains (the placeholder's own, and the copies not moved); the
    caller recomputes the message's state from its events.
    """
    row = conn.execute(
        select(messages.c.duplicate_count, messages.c.first_received_at).where(
            messages.c.message_id == placeholder
        )
    ).one_or_none()
    if row is None:
        return 0
    gained: int = row.duplicate_count
    key = (events.c.status, events.c.event_time, events.c.part)
    mine = events.alias("mine")
    same = and_(
        mine.c.message_id == message_id,
        mine.c.status == events.c.status,
        mine.c.event_time == events.c.event_time,
        mine.c.part == events.c.part,
    )
    clashes = conn.execute(
        select(*key, events.c.duplicates).where(
            events.c.message_id == placeholder, exists().where(same)
        )
    ).all()
    for clash in clashes:
        copies = clash.duplicates + 1
        gained += copies
        conn.execute(
            update(events)
            .where(
                events.c.message_id == message_id,
                events.c.status == clash.status,
                events.c.event_time == clash.event_time,
                events.c.part == clash.part,
            )
            .values(duplicates=events.c.duplicates + copies)
        )
    conn.execute(delete(events).where(events.c.message_id == placeholder, exists().where(same)))
    conn.execute(
        update(events).where(events.c.message_id == placeholder).values(message_id=message_id)
    )
    conn.execute(delete(messages).where(messages.c.message_id == placeholder))
    conn.execute(
        update(messages)
        .where(
            messages.c.message_id == message_id,
            messages.c.first_received_at > row.first_received_at,
        )
        .values(first_received_at=row.first_received_at)
    )
    return gained


def forget_unused(conn: Connection) -> int:
    """Delete the ``customer_ids`` rows whose message (or placeholder) no longer exists."""
    bound_gone = and_(
        customer_ids.c.message_id.is_not(None),
        ~exists().where(messages.c.message_id == customer_ids.c.message_id),
    )
    placeholder_gone = and_(
        customer_ids.c.message_id.is_(None),
        ~exists().where(
            messages.c.message_id == PLACEHOLDER_PREFIX + customer_ids.c.customer_message_id
        ),
    )
    result = conn.execute(delete(customer_ids).where(or_(bound_gone, placeholder_gone)))
    return int(result.rowcount)


def _chunks(ids: Sequence[str], most: int = 512) -> Iterable[list[str]]:
    for start in range(0, len(ids), most):
        yield list(ids[start : start + most])
