"""The dead-letter record: receipts the workers gave up on, kept with the reason until redriven.

Dead letters are never deleted while waiting: only :func:`ledger.purge.purge` removes them,
and only once redriven.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, func, insert, select, update

from ledger.results import DeadLetter
from ledger.schema import dead_letters


def add_dead_letter(
    conn: Connection,
    *,
    payload: str,
    reason: str,
    attempts: int,
    receipt_id: str | None,
    now: datetime,
) -> int:
    """Store a dead letter; returns its id."""
    result = conn.execute(
        insert(dead_letters)
        .values(
            receipt_id=receipt_id,
            payload=payload,
            reason=reason,
            attempts=attempts,
            failed_at=now,
            redriven_at=None,
        )
        .returning(dead_letters.c.id)
    )
    return int(result.scalar_one())


def count_waiting(conn: Connection) -> int:
    """How many dead letters wait for a redrive: the metrics' backlog and the explorer's
    dead-letter page show this one count, read through ``ix_dead_letters_redriven_at_id``."""
    waiting = conn.execute(
        select(func.count()).select_from(dead_letters).where(dead_letters.c.redriven_at.is_(None))
    ).scalar_one()
    return int(waiting)


def list_dead_letters(conn: Connection, *, include_redriven: bool, limit: int) -> list[DeadLetter]:
    """Dead letters oldest first; redriven ones only when asked."""
    query = select(dead_letters).order_by(dead_letters.c.id).limit(limit)
    if not include_redriven:
        query = query.where(dead_letters.c.redriven_at.is_(None))
    return [
        DeadLetter(
            id=row.id,
            receipt_id=row.receipt_id,
            payload=row.payload,
            reason=row.reason,
            attempts=row.attempts,
            failed_at=row.failed_at,
            redriven_at=row.redriven_at,
        )
        for row in conn.execute(query)
    ]


def mark_redriven(conn: Connection, dead_letter_id: int, now: datetime) -> None:
    """Set ``redriven_at`` once (marking again keeps the first time).

    Raises ``KeyError`` when no dead letter has that id.
    """
    updated = conn.execute(
        update(dead_letters)
        .where(dead_letters.c.id == dead_letter_id, dead_letters.c.redriven_at.is_(None))
        .values(redriven_at=now)
    ).rowcount
    if updated:
        return
    exists = conn.execute(
        select(dead_letters.c.id).where(dead_letters.c.id == dead_letter_id)
    ).first()
    if exists is None:
        raise KeyError(f"no dead letter with id {dead_letter_id}")
