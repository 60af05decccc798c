"""The counts a recording transaction keeps (``recorded_counts``): added with what they count
or not at all, by owner and summed over its writers, exact under concurrent writers."""

from __future__ import annotations

import random
import threading
from collections import Counter

import pytest

from ledger import CountKey, Ledger, RecordResult, Tally
from qlara import Receipt
from tests.ledger.samples import event, receipt


def events_by_status(got: Receipt, result: RecordResult, counted: Counter[CountKey]) -> None:
    """A tally of new events by status, duplicates apart (what the workers' tally does, in
    small)."""
    for ev in result.new_events:
        counted[("events", ev.status, "")] += 1
    for ev in result.duplicate_events:
        counted[("duplicates", ev.status, "")] += 1


def test_counts_are_added_with_what_they_count_and_once(ledger: Ledger) -> None:
    tally = Tally("host-a", 1, events_by_status)
    sent = receipt(event("m-1", "sent", 0), event("m-1", "delivered", 4))

    ledger.record_many([sent], tally=tally)
    # The same receipt again (a redelivery) is already recorded: it counts nothing
    ledger.record_many([sent], tally=tally)
    # Another receipt repeating an event counts a duplicate
    ledger.record_many([receipt(event("m-1", "sent", 0))], tally=tally)

    assert ledger.recorded_counts("host-a") == {
        ("events", "sent", ""): 1,
        ("events", "delivered", ""): 1,
        ("duplicates", "sent", ""): 1,
    }


def test_a_transaction_that_fails_keeps_neither_its_records_nor_its_counts(
    ledger: Ledger,
) -> None:
    def count_then_fail(got: Receipt, result: RecordResult, counted: Counter[CountKey]) -> None:
        events_by_status(got, result, counted)
        if got.events[0].message_id == "m-2":
            raise RuntimeError("the worker dies inside the transaction")

    tally = Tally("host-a", 1, count_then_fail)
    ledger.record_many([receipt(event("m-1", "sent", 0))], tally=tally)

    with pytest.raises(RuntimeError):
        ledger.record_many([receipt(event("m-2", "sent", 0))], tally=tally)

    assert ledger.recorded_counts("host-a") == {("events", "sent", ""): 1}
    assert ledger.get_message("m-2") is None


def test_owners_are_apart_and_an_owners_writers_are_summed(ledger: Ledger) -> None:
    ledger.record_many([receipt(event("m-1", "sent", 0))], tally=Tally("a", 1, events_by_status))
    ledger.record_many([receipt(event("m-2", "sent", 0))], tally=Tally("a", 2, events_by_status))
    ledger.record_many([receipt(event("m-3", "sent", 0))], tally=Tally("b", 1, events_by_status))
    # Without a tally nothing is counted
    ledger.record_many([receipt(event("m-4", "sent", 0))])

    assert ledger.recorded_counts("a") == {("events", "sent", ""): 2}
    assert ledger.recorded_counts("b") == {("events", "sent", ""): 1}
    assert ledger.recorded_counts("nobody") == {}


def test_concurrent_writers_of_one_owner_count_every_event_once(database_url: str) -> None:
    # Given threads recording overlapping receipts of the same messages, two of them as the
    # same writer (a worker's threads and its reconciler share its rows)
    Ledger.connect(database_url).close()
    statuses = ("sent", "delivered", "read")
    distinct = [event(f"m-{n}", s, i) for n in range(20) for i, s in enumerate(statuses)]
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def work(seed: int, writer: int) -> None:
        rng = random.Random(seed)
        mine = distinct[:]
        rng.shuffle(mine)
        opened = Ledger.connect(database_url, migrate=False)
        tally = Tally("host", writer, events_by_status)
        try:
            start.wait()
            while mine:
                batch = [receipt(ev) for ev in mine[: rng.randint(1, 4)]]
                mine = mine[len(batch) :]
                opened.record_many(batch, tally=tally)
        except BaseException as exc:
            errors.append(exc)
        finally:
            opened.close()

    threads = [
        threading.Thread(target=work, args=(seed, writer))
        for seed, writer in ((1, 1), (2, 1), (3, 2), (4, 3))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then each distinct event counts once as new, and its three other copies as duplicates
    assert errors == []
    ledger = Ledger.connect(database_url, migrate=False)
    try:
        counted = ledger.recorded_counts("host")
    finally:
        ledger.close()
    for status in statuses:
        assert counted[("events", status, "")] == 20
        assert counted[("duplicates", status, "")] == 60
