"""The per-hour message counts checked against the messages themselves."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from ledger.places import hour_of, latency_bucket
from ledger.schema import latency_hours, message_hours, messages

Key = tuple[datetime, Any, Any, Any, Any]


def _rounded(sums: Mapping[Key, list[float]]) -> dict[Key, tuple[int, float, float, int]]:
    return {
        key: (int(v[0]), round(v[1], 9), round(v[2], 6), int(v[3]))
        for key, v in sums.items()
        if v[0] or v[3] or abs(v[1]) > 1e-9 or abs(v[2]) > 1e-6
    }


def rolled_up(conn: Connection) -> dict[Key, tuple[int, float, float, int]]:
    """The sum of ``message_hours``' rows, by key."""
    sums: dict[Key, list[float]] = {}
    for row in conn.execute(select(message_hours)):
        total = sums.setdefault(
            (row.hour, row.country, row.operator, row.channel, row.status), [0, 0.0, 0.0, 0]
        )
        total[0] += row.messages
        total[1] += row.spend
        total[2] += row.latency_total
        total[3] += row.latency_count
    return _rounded(sums)


def counted(conn: Connection) -> dict[Key, tuple[int, float, float, int]]:
    """The messages grouped by the same key, one by one."""
    sums: dict[Key, list[float]] = {}
    for row in conn.execute(select(messages)):
        key = (hour_of(row.updated_at), row.country, row.operator, row.channel, row.status)
        total = sums.setdefault(key, [0, 0.0, 0.0, 0])
        timed = row.status == "delivered" and row.latency_seconds is not None
        total[0] += 1
        total[1] += row.price or 0.0
        total[2] += row.latency_seconds if timed else 0.0
        total[3] += 1 if timed else 0
    return _rounded(sums)


def latencies_rolled_up(conn: Connection) -> dict[tuple[datetime, Any, int], int]:
    """The sum of ``latency_hours``' rows, by key, keys summing to nothing left out."""
    sums: dict[tuple[datetime, Any, int], int] = {}
    for row in conn.execute(select(latency_hours)):
        key = (row.hour, row.channel, row.bucket)
        sums[key] = sums.get(key, 0) + row.messages
    return {key: n for key, n in sums.items() if n}


def latencies_counted(conn: Connection) -> dict[tuple[datetime, Any, int], int]:
    """The delivered messages' latencies bucketed one by one."""
    sums: dict[tuple[datetime, Any, int], int] = {}
    for row in conn.execute(select(messages)):
        if row.status == "delivered" and row.latency_seconds is not None:
            key = (hour_of(row.updated_at), row.channel, latency_bucket(row.latency_seconds))
            sums[key] = sums.get(key, 0) + 1
    return sums
