"""What the reconciler needs of the ledger: the messages due for a poll, and its bookkeeping.

A message is due when it was sent, has no final status, was sent longer ago than its
channel's ``after`` (all of them while the webhook is silent: ``after`` of zero) but within its
channel's expiry horizon, has been polled fewer than ``max_polls`` times, and its next poll
time (the backoff) has come. Oldest sends first. Read through the partial index
``ix_messages_pending``: the cost follows what is pending, not the ledger's size.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, exists, or_, select

from ledger.schema import messages, pending_predicate, polls
from ledger.stats import Horizon
from ledger.upsert import insert_for


@dataclass(frozen=True, slots=True)
class DuePoll:
    """A message to ask Qlara about: its ids, its channel, and how often it was asked."""

    message_id: str
    customer_message_id: str | None
    channel: str | None
    sent_at: datetime
    attempts: int


def due_polls(
    conn: Connection,
    now: datetime,
    *,
    after: Horizon,
    horizon: Horizon,
    max_polls: int,
    limit: int,
) -> list[DuePoll]:
    """The messages due for a poll at ``now`` (see the module docstring), at most ``limit``."""
    query = (
        select(
            messages.c.message_id,
            messages.c.customer_message_id,
            messages.c.channel,
            messages.c.sent_at,
            polls.c.attempts,
        )
        .select_from(messages.outerjoin(polls, polls.c.message_id == messages.c.message_id))
        .where(
            pending_predicate(),
            messages.c.sent_at <= after.cutoff(messages.c.channel, messages.c.sent_at, now),
            messages.c.sent_at >= horizon.cutoff(messages.c.channel, messages.c.sent_at, now),
            or_(
                polls.c.message_id.is_(None),
                (polls.c.next_at <= now) & (polls.c.attempts < max_polls),
            ),
        )
        .order_by(messages.c.sent_at, messages.c.message_id)
        .limit(limit)
    )
    return [
        DuePoll(
            message_id=row.message_id,
            customer_message_id=row.customer_message_id,
            channel=row.channel,
            sent_at=row.sent_at,
            attempts=row.attempts or 0,
        )
        for row in conn.execute(query)
    ]


def note_polls(
    conn: Connection, results: Iterable[tuple[DuePoll, str]], now: datetime, backoff: timedelta
) -> None:
    """Count one more poll of each message, with its result; the next may come after
    ``backoff`` doubled per poll made (at most 64 times ``backoff``)."""
    rows = [
        {
            "message_id": due.message_id,
            "attempts": due.attempts + 1,
            "next_at": now + backoff * (2 ** min(due.attempts, 6)),
            "last_result": result,
        }
        for due, result in results
    ]
    if not rows:
        return
    stmt = insert_for(conn, polls)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[polls.c.message_id],
            set_={
                "attempts": stmt.excluded.attempts,
                "next_at": stmt.excluded.next_at,
                "last_result": stmt.excluded.last_result,
            },
        ),
        sorted(rows, key=lambda row: row["message_id"]),
    )


def forget_polls(conn: Connection) -> int:
    """Delete the poll records whose message is gone (purged) or final."""
    done = ~exists().where(messages.c.message_id == polls.c.message_id, ~messages.c.is_final)
    return int(conn.execute(delete(polls).where(done)).rowcount)
