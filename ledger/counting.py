"""Counts kept in the recording transaction: ``recorded_counts``.

A worker that counted what it recorded after the commit would lose a count when it died
between the two: the broker redelivers the message, the ledger finds it recorded, and
nothing counts it again. So the counts the workers expose as counters are added to
``recorded_counts`` in the transaction that records what they count, and a scrape reads
them from there: they match the ledger exactly, whatever crashed and when.

A row is one counter sample of one writer: (owner, writer, metric, label_a, label_b) ->
value. The owner names what one scrape shows (one host's metrics directory), so hosts
summed never count one event twice; the writer is one worker process of that owner, so
two processes never wait on each other's rows. What a receipt counts is the caller's
(:class:`Tally`): the ledger stores and sums, and knows nothing of metric names.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, func, select
from sqlalchemy.dialects import postgresql, sqlite

from ledger.bulk import execute_mappings
from ledger.results import RecordResult
from ledger.schema import recorded_counts
from qlara import Receipt

#: A counter sample's key: (metric, first label value, second label value); a label a
#: metric does not have is ``""``.
CountKey = tuple[str, str, str]

#: Adds what one recorded receipt counts to the counter it is given.
CountReceipt = Callable[[Receipt, RecordResult, "Counter[CountKey]"], None]


@dataclass(frozen=True, slots=True)
class Tally:
    """Whose counts a recording transaction adds to (``owner``, ``writer``) and what each
    receipt counts (``count``, called inside the transaction: it must not block)."""

    owner: str
    writer: int
    count: CountReceipt


_KEYS = ("owner", "writer", "metric", "label_a", "label_b", "value")
_KEY_COLUMNS = [recorded_counts.c[name] for name in _KEYS[:-1]]


def _upsert(insert: postgresql.Insert | sqlite.Insert) -> postgresql.Insert | sqlite.Insert:
    return insert.on_conflict_do_update(
        index_elements=_KEY_COLUMNS,
        set_={"value": recorded_counts.c.value + insert.excluded.value},
    )


_UPSERTS = {
    "postgresql": _upsert(postgresql.insert(recorded_counts)),
    "sqlite": _upsert(sqlite.insert(recorded_counts)),
}


def add_counts(
    conn: Connection,
    tally: Tally,
    batch: Sequence[Receipt],
    results: Sequence[RecordResult],
) -> None:
    """Add what ``batch``'s receipts count (``results`` being what recording made of them)
    to ``tally``'s rows, inside the transaction open on ``conn``."""
    counted: Counter[CountKey] = Counter()
    for receipt, result in zip(batch, results, strict=True):
        tally.count(receipt, result, counted)
    rows = [
        {
            "owner": tally.owner,
            "writer": tally.writer,
            "metric": metric,
            "label_a": a,
            "label_b": b,
            "value": n,
        }
        # In key order: two transactions of one writer (its worker threads, its reconciler)
        # then lock shared rows in the same order and never deadlock.
        for (metric, a, b), n in sorted(counted.items())
        if n
    ]
    execute_mappings(conn, _UPSERTS[conn.dialect.name], _KEYS, rows)


def read_counts(conn: Connection, owner: str) -> dict[CountKey, int]:
    """Every counter sample of ``owner``, summed over its writers."""
    query = (
        select(
            recorded_counts.c.metric,
            recorded_counts.c.label_a,
            recorded_counts.c.label_b,
            func.sum(recorded_counts.c.value),
        )
        .where(recorded_counts.c.owner == owner)
        .group_by(recorded_counts.c.metric, recorded_counts.c.label_a, recorded_counts.c.label_b)
    )
    return {(metric, a, b): int(n) for metric, a, b, n in conn.execute(query)}
