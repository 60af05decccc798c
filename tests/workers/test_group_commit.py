"""Concurrent messages are recorded in one ledger transaction, and a refusal costs only the
receipt the ledger refuses."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace

import dramatiq
import msgspec

from ledger import Ledger, LedgerRefused, LedgerUnavailable, RecordResult
from qlara import Receipt
from qlara.wire import encode_argument
from tests.workers.support import join, make_receipt
from workers import WorkerConfig, build_broker
from workers.broker import receipt_message
from workers.recorder import GroupCommit, GroupOutcome


def _result() -> RecordResult:
    return RecordResult(
        already_recorded=False,
        new_events=[],
        duplicate_events=[],
        new_inbound=0,
        duplicate_inbound=0,
        latencies=[],
    )


class _Ledger:
    """Stands in for Ledger.record_many in these unit tests of GroupCommit alone: it logs
    each transaction's receipt ids, can hold the first one open, and refuses given ids."""

    def __init__(self, *, refuse: frozenset[str] = frozenset(), down: bool = False) -> None:
        self.transactions: list[list[str]] = []
        self.refuse = refuse
        self.down = down
        self.entered = threading.Event()
        self.release = threading.Event()
        self.release.set()

    def record_many(self, batch: Sequence[Receipt], *, tally: object = None) -> list[RecordResult]:
        self.entered.set()
        self.release.wait(10)
        ids = [r.receipt_id for r in batch]
        self.transactions.append(ids)
        if self.down:
            raise LedgerUnavailable("database is locked")
        if self.refuse.intersection(ids):
            raise LedgerRefused("DataError: cannot store")
        return [_result() for _ in batch]


def _run(group: GroupCommit, calls: dict[str, list[Receipt]]) -> dict[str, GroupOutcome]:
    outcomes: dict[str, GroupOutcome] = {}

    def one(name: str) -> None:
        outcomes[name] = group.record(calls[name])

    threads = [threading.Thread(target=one, args=(name,)) for name in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return outcomes


def test_callers_arriving_during_a_transaction_share_the_next_one() -> None:
    # Given a transaction in progress
    fake = _Ledger()
    group = GroupCommit(lambda: fake)  # type: ignore[arg-type, return-value]
    fake.release.clear()
    first = threading.Thread(target=group.record, args=([make_receipt("r-0", "m-0")],))
    first.start()
    assert fake.entered.wait(10)
    # When three more callers arrive meanwhile
    waiting = {
        f"c{i}": [make_receipt(f"r-{i}a", "m"), make_receipt(f"r-{i}b", "m")] for i in (1, 2, 3)
    }
    results: dict[str, GroupOutcome] = {}
    threads = [
        threading.Thread(target=lambda n=name: results.__setitem__(n, group.record(waiting[n])))
        for name in waiting
    ]
    for thread in threads:
        thread.start()
    while len(group._pending) < 3:
        threading.Event().wait(0.005)
    fake.release.set()
    first.join(10)
    for thread in threads:
        thread.join(10)
    # Then they are recorded together, in one transaction after the first
    assert fake.transactions[0] == ["r-0"]
    assert len(fake.transactions) == 2
    assert sorted(fake.transactions[1]) == sorted(
        r.receipt_id for rs in waiting.values() for r in rs
    )
    assert all(len(o.results) == 2 and None not in o.results for o in results.values())


def test_a_group_never_exceeds_its_receipt_bound_unless_one_message_does() -> None:
    fake = _Ledger()
    group = GroupCommit(lambda: fake, max_receipts=3)  # type: ignore[arg-type, return-value]
    fake.release.clear()
    blocker = threading.Thread(target=group.record, args=([make_receipt("r-x", "m")],))
    blocker.start()
    assert fake.entered.wait(10)
    calls = {
        "two": [make_receipt("r-1", "m"), make_receipt("r-2", "m")],
        "two-more": [make_receipt("r-3", "m"), make_receipt("r-4", "m")],
        "five": [make_receipt(f"r-5{i}", "m") for i in range(5)],
    }
    threads = [threading.Thread(target=group.record, args=(rs,)) for rs in calls.values()]
    for thread in threads:
        thread.start()
    while len(group._pending) < 3:
        threading.Event().wait(0.005)
    fake.release.set()
    for thread in [blocker, *threads]:
        thread.join(10)
    sizes = sorted(len(t) for t in fake.transactions[1:])
    assert sum(sizes) == 9
    # the five-receipt message goes alone; no other transaction holds more than 3
    assert 5 in sizes
    assert all(size <= 3 for size in sizes if size != 5)


def test_a_refused_receipt_costs_only_itself() -> None:
    # Given two concurrent messages, one of which carries a receipt the ledger refuses
    fake = _Ledger(refuse=frozenset({"r-bad"}))
    group = GroupCommit(lambda: fake)  # type: ignore[arg-type, return-value]
    calls = {
        "good": [make_receipt("r-g1", "m-1")],
        "mixed": [
            make_receipt("r-m1", "m-2"),
            make_receipt("r-bad", "m-3"),
            make_receipt("r-m2", "m-4"),
        ],
    }
    outcomes = _run(group, calls)
    # Then everything but r-bad is recorded, and r-bad is reported where it stood
    good, mixed = outcomes["good"], outcomes["mixed"]
    assert None not in good.results
    assert [r is None for r in mixed.results] == [False, True, False]
    assert [(i, type(e)) for i, e in mixed.refused] == [(1, LedgerRefused)]
    committed = {i for t in fake.transactions for i in t if not fake.refuse.intersection(t)}
    assert committed == {"r-g1", "r-m1", "r-m2"}


def test_an_unavailable_ledger_fails_every_call_of_the_group_for_a_retry() -> None:
    fake = _Ledger(down=True)
    group = GroupCommit(lambda: fake)  # type: ignore[arg-type, return-value]
    outcomes = _run(group, {"a": [make_receipt("r-a", "m")], "b": [make_receipt("r-b", "m")]})
    for outcome in outcomes.values():
        assert isinstance(outcome.error, LedgerUnavailable)
        assert outcome.results == [None]


def test_a_batch_with_a_receipt_postgresql_cannot_store_dead_letters_that_receipt_only(
    config: WorkerConfig, postgres_url: str
) -> None:
    # Given workers on a PostgreSQL ledger, and a batch message whose middle receipt carries
    # a NUL character (built past the parser, which would have replaced it)
    pg = replace(config, database_url=postgres_url, max_retries=0)
    ledger = Ledger.connect(postgres_url, migrate=True)
    broker = build_broker(pg)
    good1, good2 = make_receipt("r-good-1", "m-1"), make_receipt("r-good-2", "m-2")
    [event] = make_receipt("r-bad", "m-3").events
    bad = Receipt(
        receipt_id="r-bad",
        received_at=good1.received_at,
        events=(msgspec.structs.replace(event, error="x\x00y"),),
    )
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
    try:
        broker.enqueue(receipt_message(encode_argument([good1, bad, good2]), message_id="batch-9"))
        worker.start()
        join(broker)
        # Then the two good receipts are recorded, and the dead letter holds the bad one only
        counts = ledger.counts()
        assert (counts.receipts, counts.events, counts.dead_letters) == (2, 2, 1)
        [letter] = ledger.dead_letters()
        assert Receipt.decode(letter.payload) == bad
        assert letter.reason.startswith("RejectedByLedger") or "DataError" in letter.reason
        assert "1 of 3 receipts" in letter.reason
    finally:
        worker.stop(timeout=10_000)
        broker.client.close()
        ledger.close()


class _Interrupt(BaseException):
    """Like Dramatiq's time-limit and shutdown interrupts: not an Exception."""


def test_an_interrupted_transaction_leaves_no_caller_waiting_for_ever() -> None:
    # Given a transaction in progress, and two callers queued behind it
    fake = _Ledger()
    group = GroupCommit(lambda: fake)  # type: ignore[arg-type, return-value]
    fake.release.clear()
    first = threading.Thread(target=group.record, args=([make_receipt("r-0", "m")],))
    first.start()
    assert fake.entered.wait(10)
    ended: dict[str, object] = {}

    def caller(name: str) -> None:
        try:
            ended[name] = group.record([make_receipt(f"r-{name}", "m")])
        except _Interrupt as exc:
            ended[name] = exc

    callers = [threading.Thread(target=caller, args=(name,)) for name in ("a", "b")]
    for thread in callers:
        thread.start()
    while len(group._pending) < 2:
        threading.Event().wait(0.005)

    def interrupted(batch: Sequence[Receipt], *, tally: object = None) -> list[RecordResult]:
        raise _Interrupt

    # When the transaction that takes both of them is interrupted in its thread
    fake.record_many = interrupted  # type: ignore[method-assign]
    fake.release.set()
    for thread in [first, *callers]:
        thread.join(10)

    # Then the interrupted thread raised, and the other caller was told to retry
    assert not any(thread.is_alive() for thread in callers)
    outcomes = sorted(ended.values(), key=lambda v: isinstance(v, _Interrupt))
    assert isinstance(outcomes[1], _Interrupt)
    assert isinstance(outcomes[0], GroupOutcome)
    assert isinstance(outcomes[0].error, LedgerUnavailable)
