"""Events counted per minute of receipt, channel and status (``event_minutes``).

A chart of a day's events would otherwise count some 400,000 event rows on every look. The
writers count the distinct events each transaction inserts and append one row per (minute,
channel, status) in the same transaction: plain inserts, so concurrent writers never wait on
each other's rows, and the counts commit with the events or not at all. A busy minute
therefore has many rows; :func:`compact` replaces a passed minute's rows by one row holding
their sum. A key's count is always the sum of its rows, whatever has been compacted.

Compaction deletes rows with ``RETURNING`` and inserts the sum of exactly the rows it
deleted, in one transaction, so two compactions at once, or a writer appending to a minute
being compacted, can neither lose nor double a count.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, func, select

from ledger.bulk import execute_rows
from ledger.schema import event_minutes

#: A minute's key: (its start, UTC; the stored channel, possibly none; the status).
MinuteKey = tuple[datetime, str | None, str]

_KEYS = ["minute", "channel", "status", "events"]
_INSERT = event_minutes.insert().inline()
#: Rows deleted per statement while compacting.
_DELETE_CHUNK = 500
#: How far back a compaction round looks: minutes older than this keep whatever rows they
#: have (a late event can add one to an old minute; its count stays right).
COMPACT_LOOKBACK = timedelta(hours=6)
#: A minute is compacted once it is this far past: its events are mostly recorded by then.
COMPACT_AFTER = timedelta(minutes=2)


def minute_of(moment: datetime) -> datetime:
    """The start of ``moment``'s minute."""
    return moment.replace(second=0, microsecond=0)


def append(conn: Connection, counts: Counter[MinuteKey]) -> None:
    """Add ``counts`` (distinct events just inserted, by minute key) as new rows."""
    rows = [(minute, channel, status, n) for (minute, channel, status), n in counts.items() if n]
    execute_rows(conn, _INSERT, _KEYS, rows)


def compact(conn: Connection, since: datetime, before: datetime) -> int:
    """Collapse the rows of each key with a minute in ``[since, before)`` into one row.
    Returns how many rows were removed (0 when every key already had a single row).

    ``conn`` must be in a write transaction (see :mod:`ledger.engine`)."""
    in_range = (event_minutes.c.minute >= since) & (event_minutes.c.minute < before)
    key = (event_minutes.c.minute, event_minutes.c.channel, event_minutes.c.status)
    repeated = select(*key).where(in_range).group_by(*key).having(func.count() > 1).subquery()
    ids = list(
        conn.execute(
            select(event_minutes.c.id)
            .join(
                repeated,
                (event_minutes.c.minute == repeated.c.minute)
                & event_minutes.c.channel.is_not_distinct_from(repeated.c.channel)
                & (event_minutes.c.status == repeated.c.status),
            )
            .order_by(event_minutes.c.id)
        ).scalars()
    )
    totals: Counter[MinuteKey] = Counter()
    removed = 0
    for start in range(0, len(ids), _DELETE_CHUNK):
        gone = conn.execute(
            delete(event_minutes)
            .where(event_minutes.c.id.in_(ids[start : start + _DELETE_CHUNK]))
            .returning(*key, event_minutes.c.events)
        ).all()
        removed += len(gone)
        for minute, channel, status, n in gone:
            totals[minute, channel, status] += n
    append(conn, totals)
    return removed - len(totals)


def count_minutes(events: Iterable[tuple[datetime, str | None, str]]) -> Counter[MinuteKey]:
    """Count (received_at, channel, status) triples by minute key."""
    counts: Counter[MinuteKey] = Counter()
    for received_at, channel, status in events:
        counts[minute_of(received_at), channel, status] += 1
    return counts
