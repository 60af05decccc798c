"""Messages counted by hour of their last change and by destination (``message_hours``).

The explorer's breakdown by country, operator and channel groups the messages changed in a
window; over a week that is a million rows to group on every look. So every transaction
that changes messages appends, per key (hour of ``updated_at``, country, operator,
channel, status), what it moved: a message recorded anew adds itself to its key, a message
changed leaves its old key (a row of -1) and joins its new one, a message folded or purged
leaves. Plain inserts, committed with the change or not at all, so writers never wait on
each other's rows; :func:`compact` replaces each key's rows by their sum, as
:mod:`ledger.rollup` does for events. A key's figures are always the sum of its rows.

:func:`read` sums the whole hours of a window from here and reads the partial hours at its
edges from ``messages`` itself: the answer is exact for any window.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Insert, Select, Table, and_, case, delete, func, select, text
from sqlalchemy.sql.elements import ColumnElement

from ledger.bulk import execute_rows
from ledger.schema import latency_hours, message_hours, messages

HOUR = timedelta(hours=1)
#: Latency buckets grow by this factor: 16 a doubling, so a bucket's middle is within 2.2 %
#: of every latency in it.
LATENCY_GROWTH = 2 ** (1 / 16)
#: The upper bound of bucket 0, and of every latency below it (seconds).
LATENCY_FLOOR = 0.001
#: What a message contributes, read from its ``messages`` row.
COLUMNS = (
    messages.c.updated_at,
    messages.c.country,
    messages.c.operator,
    messages.c.channel,
    messages.c.status,
    messages.c.price,
    messages.c.latency_seconds,
)
#: An hour's key: (its start, UTC; country; operator; channel; status).
HourKey = tuple[datetime, str | None, str | None, str | None, str | None]
#: Summed per key: messages, spend, delivered latency seconds, delivered latencies.
Sums = tuple[int, float, float, int]

_KEYS = [
    "hour",
    "country",
    "operator",
    "channel",
    "status",
    "messages",
    "spend",
    "latency_total",
    "latency_count",
]
_INSERT = message_hours.insert().inline()
_LATENCY_KEYS = ["hour", "channel", "bucket", "messages"]
_INSERT_LATENCY = latency_hours.insert().inline()
_DELETE_CHUNK = 500
#: How far back a compaction round looks (older hours keep whatever rows they have).
COMPACT_LOOKBACK = timedelta(hours=6)


#: The start of a row's hour in SQL. SQLite stores datetimes as "YYYY-MM-DD HH:MM:SS.ffffff"
#: UTC text (:mod:`ledger.timestamps`): an hour is its first 14 characters ("YYYY-MM-DD HH:").
_HOUR_SQL = {
    "sqlite": "substr(updated_at, 1, 14) || '00:00.000000'",
    "postgresql": "date_trunc('hour', updated_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
}
_BACKFILL = (
    "INSERT INTO message_hours (hour, country, operator, channel, status, messages, spend, "
    "latency_total, latency_count) SELECT {hour}, country, operator, channel, status, count(*), "
    "coalesce(sum(price), 0), "
    "coalesce(sum(CASE WHEN status = 'delivered' THEN latency_seconds END), 0), "
    "count(CASE WHEN status = 'delivered' THEN latency_seconds END) "
    "FROM messages GROUP BY 1, 2, 3, 4, 5"
)


def backfill(conn: Connection) -> None:
    """Count every message there is into ``message_hours`` and ``latency_hours`` (which must
    be empty): for a ledger filled before the tables existed, or by bulk load. The latency
    buckets are computed here, a batch of messages at a time (SQLite has no logarithm)."""
    conn.execute(text(_BACKFILL.format(hour=_HOUR_SQL[conn.dialect.name])))
    counts: dict[tuple[datetime, str | None, int], int] = {}
    timed = conn.execute(
        select(messages.c.updated_at, messages.c.channel, messages.c.latency_seconds)
        .where(messages.c.status == "delivered", messages.c.latency_seconds.is_not(None))
        .execution_options(yield_per=10_000)
    )
    for updated_at, channel, seconds in timed:
        key = (hour_of(updated_at), channel, latency_bucket(seconds))
        counts[key] = counts.get(key, 0) + 1
    rows = [(*key, n) for key, n in counts.items()]
    for start in range(0, len(rows), 10_000):
        execute_rows(conn, _INSERT_LATENCY, _LATENCY_KEYS, rows[start : start + 10_000])


def hour_of(moment: datetime) -> datetime:
    """The start of ``moment``'s hour."""
    return moment.replace(minute=0, second=0, microsecond=0)


def latency_bucket(seconds: float) -> int:
    """The bucket of a latency: ``b`` holds ``(FLOOR * GROWTH**(b-1), FLOOR * GROWTH**b]``,
    bucket 0 everything up to :data:`LATENCY_FLOOR`."""
    if seconds <= LATENCY_FLOOR:
        return 0
    return max(math.ceil(math.log(seconds / LATENCY_FLOOR, LATENCY_GROWTH) - 1e-9), 0)


def bucket_middle(bucket: int) -> float:
    """The geometric middle of a bucket: the value a percentile in it is given."""
    if bucket == 0:
        return LATENCY_FLOOR / 2
    return LATENCY_FLOOR * float(LATENCY_GROWTH ** (bucket - 0.5))


def _latency_key(row: Mapping[Any, Any]) -> tuple[datetime, str | None, int] | None:
    if row["status"] != "delivered" or row["latency_seconds"] is None:
        return None
    return hour_of(row["updated_at"]), row["channel"], latency_bucket(row["latency_seconds"])


def _contribution(row: Mapping[Any, Any]) -> tuple[HourKey, Sums]:
    timed = row["status"] == "delivered" and row["latency_seconds"] is not None
    key = (hour_of(row["updated_at"]), row["country"], row["operator"], row["channel"])
    return (*key, row["status"]), (
        1,
        float(row["price"] or 0.0),
        float(row["latency_seconds"]) if timed else 0.0,
        1 if timed else 0,
    )


def _add(sums: dict[Any, list[float]], key: Any, values: Iterable[float], sign: int = 1) -> None:
    """Add ``values`` (times ``sign``) to ``key``'s running sums (messages, spend, latency
    seconds, latencies)."""
    total = sums.setdefault(key, [0, 0.0, 0.0, 0])
    for index, value in enumerate(values):
        total[index] += sign * (value or 0)


def _sums(sums: Mapping[Any, list[float]]) -> dict[Any, Sums]:
    """Running sums as :data:`Sums`, keys that hold nothing left out."""
    return {key: (int(v[0]), v[1], v[2], int(v[3])) for key, v in sums.items() if _counts(v)}


def moved(
    before: Mapping[str, Mapping[Any, Any]], after: Mapping[str, Mapping[Any, Any]]
) -> dict[HourKey, Sums]:
    """What changed between the rows of the same messages ``before`` and ``after`` a
    transaction (by message id, each with :data:`COLUMNS`; a message absent from one side
    did not exist then): each message's old contribution taken away, its new one added."""
    sums: dict[Any, list[float]] = {}
    for sign, rows in ((-1, before), (1, after)):
        for row in rows.values():
            _add(sums, *_contribution(row), sign=sign)
    return _sums(sums)


def record_moves(
    conn: Connection,
    before: Mapping[str, Mapping[Any, Any]],
    after: Mapping[str, Mapping[Any, Any]],
) -> None:
    """Append what a transaction moved (:func:`moved`), to both tables."""
    append(conn, moved(before, after))
    latencies: dict[tuple[datetime, str | None, int], int] = {}
    for sign, side in ((-1, before), (1, after)):
        for row in side.values():
            key = _latency_key(row)
            if key is not None:
                latencies[key] = latencies.get(key, 0) + sign
    rows = [(*key, n) for key, n in latencies.items() if n]
    if rows:
        execute_rows(conn, _INSERT_LATENCY, _LATENCY_KEYS, rows)


def append(conn: Connection, sums: Mapping[HourKey, Sums]) -> None:
    """Add ``sums`` (by hour key) as new rows."""
    rows = [(*key, *values) for key, values in sums.items()]
    if rows:
        execute_rows(conn, _INSERT, _KEYS, rows)


def compact(conn: Connection, since: datetime, before: datetime) -> int:
    """Collapse the rows of each key with an hour in ``[since, before)`` into one row, in both
    tables, dropping keys that sum to nothing. Returns how many rows were removed.

    Deletes with ``RETURNING`` and inserts the sum of exactly the rows deleted, in one
    transaction, so a writer appending meanwhile, or another compaction, loses nothing."""
    return _compact(conn, message_hours, _INSERT, _KEYS, 5, since, before) + _compact(
        conn, latency_hours, _INSERT_LATENCY, _LATENCY_KEYS, 3, since, before
    )


def _compact(
    conn: Connection,
    table: Table,
    insert: Insert,
    names: list[str],
    key_size: int,
    since: datetime,
    before: datetime,
) -> int:
    """:func:`compact` on one table: its ``names`` are the key's ``key_size`` columns, then
    the summed ones."""
    ids = list(
        conn.execute(
            select(table.c.id)
            .where(table.c.hour >= since, table.c.hour < before)
            .order_by(table.c.id)
        ).scalars()
    )
    totals: dict[tuple[Any, ...], list[float]] = {}
    removed = 0
    for start in range(0, len(ids), _DELETE_CHUNK):
        gone = conn.execute(
            delete(table)
            .where(table.c.id.in_(ids[start : start + _DELETE_CHUNK]))
            .returning(*(table.c[name] for name in names))
        ).all()
        removed += len(gone)
        for row in gone:
            total = totals.setdefault(tuple(row[:key_size]), [0] * (len(names) - key_size))
            for index, value in enumerate(row[key_size:]):
                total[index] += value
    rows = [(*key, *values) for key, values in totals.items() if _counts(values)]
    if rows:
        execute_rows(conn, insert, names, rows)
    return removed - len(rows)


def _counts(values: Iterable[float]) -> bool:
    """Whether summed figures hold anything (a float left by adding and taking away the
    same prices is nothing)."""
    return any(abs(value) > 1e-9 for value in values)


#: Narrows a read to some channels: given a table's channel column, a clause (``None``: all).
Narrow = Callable[[Any], ColumnElement[bool] | None]


def _spans(
    start: datetime, end: datetime
) -> tuple[list[tuple[datetime, datetime]], tuple[datetime, datetime] | None]:
    """``[start, end)`` as the partial hours at its edges (read from ``messages``) and the
    whole hours between them (read from the per-hour tables; ``None`` when there is none)."""
    first, last = hour_of(start), hour_of(end)
    if first < start:
        first += HOUR
    if first >= last:
        return [(start, end)], None
    edges = [(low, high) for low, high in ((start, first), (last, end)) if low < high]
    return edges, (first, last)


def _narrowed(query: Select[Any], narrow: Narrow, column: Any) -> Select[Any]:
    clause = narrow(column)
    return query if clause is None else query.where(clause)


def read(
    conn: Connection, start: datetime, end: datetime, narrow: Narrow
) -> dict[tuple[str | None, str | None, str | None, str | None], Sums]:
    """The messages changed in ``[start, end)`` by (country, operator, channel, status):
    whole hours summed from ``message_hours``, the partial hours at either edge grouped from
    ``messages``; ``narrow`` applies to both tables' channel column."""
    edges, whole = _spans(start, end)
    sums: dict[Any, list[float]] = {}
    c = messages.c
    timed = and_(c.status == "delivered", c.latency_seconds.is_not(None))
    for low, high in edges:
        key = (c.country, c.operator, c.channel, c.status)
        query = select(
            *key,
            func.count(),
            func.sum(c.price),
            func.sum(case((timed, c.latency_seconds), else_=0.0)),
            func.count(case((timed, 1))),
        ).where(c.updated_at >= low, c.updated_at < high)
        for row in conn.execute(_narrowed(query, narrow, c.channel).group_by(*key)):
            _add(sums, tuple(row[:4]), row[4:])
    if whole is not None:
        h = message_hours.c
        key = (h.country, h.operator, h.channel, h.status)
        query = select(
            *key,
            func.sum(h.messages),
            func.sum(h.spend),
            func.sum(h.latency_total),
            func.sum(h.latency_count),
        ).where(h.hour >= whole[0], h.hour < whole[1])
        for row in conn.execute(_narrowed(query, narrow, h.channel).group_by(*key)):
            _add(sums, tuple(row[:4]), row[4:])
    return _sums(sums)


def read_latencies(
    conn: Connection, start: datetime, end: datetime, narrow: Narrow
) -> Counter[int]:
    """The sent -> delivered latencies of the delivered messages changed in ``[start, end)``,
    counted by bucket (:func:`latency_bucket`): whole hours from ``latency_hours``, the
    partial hours at either edge from ``messages``."""
    edges, whole = _spans(start, end)
    found: Counter[int] = Counter()
    c = messages.c
    for low, high in edges:
        query = select(c.latency_seconds).where(
            c.status == "delivered",
            c.updated_at >= low,
            c.updated_at < high,
            c.latency_seconds.is_not(None),
        )
        latencies = conn.execute(_narrowed(query, narrow, c.channel)).scalars()
        found.update(latency_bucket(seconds) for seconds in latencies)
    if whole is not None:
        h = latency_hours.c
        query = select(h.bucket, func.sum(h.messages)).where(h.hour >= whole[0], h.hour < whole[1])
        for bucket, n in conn.execute(_narrowed(query, narrow, h.channel).group_by(h.bucket)):
            found[int(bucket)] += int(n)
    return +found
