"""Recording sends a few distinct SQL texts whatever the batch sizes, and batches larger than
one statement carries are recorded whole.

Each distinct text is a statement the driver prepares and keeps on its own (Python's sqlite3
caches 128 per connection; psycopg prepares the ones it sees repeatedly). A text per batch
size made a worker's SQLite statements take megabytes per connection, re-prepared as they
were evicted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event as sa_event

from ledger import Ledger
from ledger.engine import build_engine
from tests.ledger.samples import event, receipt, reply

#: Distinct texts one statement of the write path may take: ``IN`` lists of 1, 2, 4, ...,
#: 512 ids; INSERT ... RETURNING pieces of 1, 2, 4, ..., 64 rows.
MOST_SHAPES = 10


@pytest.fixture
def traced(database_url: str) -> Iterator[tuple[Ledger, list[str]]]:
    """A migrated ledger, and the SQL texts it sends from then on."""
    engine = build_engine(database_url)
    ledger = Ledger(engine)
    ledger.migrate()
    texts: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        texts.append(statement)

    sa_event.listen(engine, "before_cursor_execute", seen)
    yield ledger, texts
    ledger.close()


def test_batches_of_every_size_share_a_few_statements(
    traced: tuple[Ledger, list[str]],
) -> None:
    ledger, texts = traced
    # Given batches of 1 to 80 receipts and a few larger ones, each with new messages, updates
    # of the previous batch's messages (one fewer) and inbound replies
    sizes = [*range(1, 81), 100, 130, 300]
    previous = 0
    for n in sizes:
        batch = [receipt(event(f"m-{n}-{i}", "sent", 0)) for i in range(n)]
        batch += [receipt(event(f"m-{previous}-{i}", "delivered", 5)) for i in range(n - 1)]
        batch += [receipt(inbound=(reply(f"in-{n}-{i}"),)) for i in range(n)]
        ledger.record_many(batch)
        previous = n

    # Then each statement took at most MOST_SHAPES texts (one per batch size before: 83)
    shapes: defaultdict[str, set[str]] = defaultdict(set)
    for text in texts:
        shapes[" ".join(text.split()[:4])].add(text)
    most = max(shapes.values(), key=len)
    assert len(most) <= MOST_SHAPES, f"{len(most)} texts of {next(iter(most))[:80]!r}..."
    assert sum(len(s) for s in shapes.values()) <= 60


def test_a_batch_larger_than_one_statement_is_recorded_whole(ledger: Ledger) -> None:
    # Given 700 messages recorded in one batch
    first = ledger.record_many([receipt(event(f"m-{i}", "sent", 0)) for i in range(700)])
    assert sum(len(r.new_events) for r in first) == 700

    # When one batch carries an update of each, 100 new messages, a copy of an event already
    # stored and 150 replies
    updates = [receipt(event(f"m-{i}", "delivered", 5)) for i in range(700)]
    fresh = [receipt(event(f"n-{i}", "sent", 0)) for i in range(100)]
    again = [receipt(event("m-3", "sent", 0))]
    replies = [receipt(inbound=(reply(f"in-{i}"),)) for i in range(150)]
    results = ledger.record_many([*updates, *fresh, *again, *replies])

    # Then every receipt is recorded, each event once
    assert not any(r.already_recorded for r in results)
    assert sum(len(r.new_events) for r in results) == 800
    assert sum(len(r.duplicate_events) for r in results) == 1
    assert sum(r.new_inbound for r in results) == 150
    counts = ledger.counts()
    assert (counts.receipts, counts.events, counts.duplicates) == (1651, 1500, 1)
    assert counts.inbound == 150
    detail = ledger.get_message("m-699")
    assert detail is not None
    assert detail.status == "delivered"


def test_psycopg_converts_each_batch_statement_once(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # psycopg turns %(name)s placeholders into $n with a regular expression, and keeps the
    # result only for statements it deems small; the ledger lets it keep its batch statements.
    from psycopg import _queries

    ledger = Ledger(build_engine(postgres_url))
    ledger.migrate()

    def batch(tag: str) -> list[Any]:
        news = [receipt(event(f"{tag}-{i}", "sent", 0)) for i in range(64)]
        return news + [receipt(event(f"{tag}-{i}", "delivered", 5)) for i in range(64)]

    try:
        ledger.record_many(batch("a"))  # every shape of a 64-row batch seen once
        converted: list[int] = []
        convert = _queries._query2pg_nocache

        def counted(query: bytes, encoding: str) -> Any:
            converted.append(len(query))
            return convert(query, encoding)

        monkeypatch.setattr(_queries, "_query2pg_nocache", counted)
        misses = _queries._query2pg.cache_info().misses
        ledger.record_many(batch("b"))
        misses = _queries._query2pg.cache_info().misses - misses
    finally:
        ledger.close()

    # Then the second batch of the same shape converted nothing again: no statement took the
    # uncached way, and each one was found in the cache
    assert converted == []
    assert misses == 0
