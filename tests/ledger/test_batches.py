"""Recording several receipts in one transaction (``Ledger.record_many``) is recording them
one by one, in order: the same rows, and for each receipt the same result."""

from __future__ import annotations

import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import LatencyObservation, Ledger
from qlara import DeliveryEvent, Receipt
from tests.ledger.samples import event, receipt, reply
from tests.ledger.test_properties import FAR_FUTURE, _snapshot, events_strategy


def test_a_batch_records_new_receipts_and_recognises_recorded_ones(ledger: Ledger) -> None:
    # Given a receipt already recorded
    old = receipt(event("m-1", "sent", 0))
    ledger.record(old)

    # When a batch carries it again between two new receipts
    results = ledger.record_many([receipt(event("m-2", "sent", 0)), old, receipt(event("m-3"))])

    # Then only the new ones are recorded, each result in the batch's order
    assert [r.already_recorded for r in results] == [False, True, False]
    assert [[e.message_id for e in r.new_events] for r in results] == [["m-2"], [], ["m-3"]]
    assert results[1].duplicate_events == []
    assert ledger.counts().receipts == 3
    assert ledger.counts().events == 3


def test_a_receipt_id_twice_in_one_batch_is_recorded_once(ledger: Ledger) -> None:
    once = receipt(event("m-1", "sent", 0), inbound=(reply(),))

    results = ledger.record_many([once, once])

    assert [r.already_recorded for r in results] == [False, True]
    counts = ledger.counts()
    assert (counts.receipts, counts.events, counts.duplicates) == (1, 1, 0)
    assert (counts.inbound, counts.inbound_duplicates) == (1, 0)


def test_one_message_across_receipts_of_a_batch_gets_the_state_of_all_its_events(
    ledger: Ledger,
) -> None:
    # Given a batch whose receipts report the same message: sent, then delivered, then read
    batch = [
        receipt(event("m-1", "sent", 0, channel="rcs")),
        receipt(event("m-1", "delivered", 4, channel="rcs")),
        receipt(event("m-1", "read", 9, channel="rcs")),
    ]

    # When it is recorded in one transaction
    results = ledger.record_many(batch)

    # Then the message has its final state, and the latency is reported once, by the receipt
    # that completed it
    message = ledger.get_message("m-1")
    assert message is not None
    assert (message.status, message.is_final, message.event_count) == ("delivered", True, 3)
    assert message.read_at is not None
    assert [r.latencies for r in results] == [
        [],
        [LatencyObservation(channel="rcs", outcome="delivered", seconds=4.0, country="IT")],
        [],
    ]


def test_copies_within_and_across_receipts_of_a_batch_are_counted_exactly(
    ledger: Ledger,
) -> None:
    # Given an event stored before, and a batch that repeats it and repeats a new one
    ledger.record(receipt(event("m-1", "sent", 0)))
    batch = [
        receipt(
            event("m-1", "sent", 0), event("m-1", "delivered", 3), event("m-1", "delivered", 3)
        ),
        receipt(event("m-1", "delivered", 3), event("m-1", "sent", 0)),
        receipt(inbound=(reply("in-1"), reply("in-1"))),
        receipt(inbound=(reply("in-1"),)),
    ]

    # When it is recorded in one transaction
    results = ledger.record_many(batch)

    # Then the new event belongs to the first receipt carrying it and every other copy is a
    # duplicate, in the result of the receipt that carried it
    assert [[e.status for e in r.new_events] for r in results] == [["delivered"], [], [], []]
    assert [sorted(e.status for e in r.duplicate_events) for r in results] == [
        ["delivered", "sent"],
        ["delivered", "sent"],
        [],
        [],
    ]
    assert [(r.new_inbound, r.duplicate_inbound) for r in results] == [
        (0, 0),
        (0, 0),
        (1, 1),
        (0, 1),
    ]
    message = ledger.get_message("m-1")
    assert message is not None
    assert (message.event_count, message.duplicate_count) == (2, 4)
    assert sorted((e.status, e.duplicates) for e in message.events) == [
        ("delivered", 2),
        ("sent", 2),
    ]
    counts = ledger.counts()
    assert (counts.duplicates, counts.inbound, counts.inbound_duplicates) == (4, 1, 2)


def test_an_empty_batch_records_nothing(ledger: Ledger) -> None:
    assert ledger.record_many([]) == []
    assert ledger.counts().receipts == 0


def _receipts(groups: list[list[DeliveryEvent]], run: str) -> list[Receipt]:
    return [
        Receipt(receipt_id=f"{run}-{n}", received_at=0.0, events=tuple(group))
        for n, group in enumerate(groups)
    ]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(distinct=events_strategy, data=st.data())
def test_any_batching_gives_the_results_and_rows_of_recording_one_by_one(
    ledger: Ledger, distinct: list[DeliveryEvent], data: st.DataObject
) -> None:
    # Given events with copies, shuffled and split into receipts, one receipt sent twice
    copies = data.draw(st.lists(st.sampled_from(distinct), max_size=8), label="copies")
    arrivals = data.draw(st.permutations(distinct + copies), label="arrival order")
    sizes = data.draw(
        st.lists(st.integers(min_value=1, max_value=3), min_size=len(arrivals)),
        label="receipt sizes",
    )
    groups: list[list[DeliveryEvent]] = []
    rest = list(arrivals)
    for size in sizes:
        if not rest:
            break
        groups.append(rest[:size])
        rest = rest[size:]
    resent = data.draw(st.sampled_from(range(len(groups))), label="resent receipt")
    cuts = data.draw(st.lists(st.integers(min_value=1, max_value=4), min_size=1), label="cuts")

    # When recorded one by one
    ledger.purge(FAR_FUTURE)
    run = uuid.uuid4().hex
    one_by_one = _receipts(groups, run)
    one_by_one.append(one_by_one[resent])
    expected_results = [ledger.record(r) for r in one_by_one]
    expected = _snapshot(ledger)

    # And again from scratch in batches of drawn sizes
    ledger.purge(FAR_FUTURE)
    run = uuid.uuid4().hex
    batched = _receipts(groups, run)
    batched.append(batched[resent])
    results = []
    start = 0
    for cut in cuts * len(batched):
        if start >= len(batched):
            break
        results.extend(ledger.record_many(batched[start : start + cut]))
        start += cut

    # Then each receipt's result and the rows are the same
    assert results == expected_results
    assert _snapshot(ledger) == expected
