"""The ledger's answer depends on the set of events, never on how they arrived.

Any event set (several messages, read and unknown statuses, equal timestamps, several parts),
with any duplicates, shuffled, split into receipts any way and recorded in that order, leaves
the same message rows and the same event rows as recording it all at once in a canonical
order; and the message state is what :func:`qlara.reduce_state` says of the distinct events.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections import Counter
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import Ledger, MessageDetail
from qlara import DeliveryEvent, Receipt, reduce_state
from tests.ledger.samples import event

MESSAGE_IDS = ["m-1", "m-2", "m-3"]
STATUSES = ["sent", "received", "delivered", "error", "expired", "read", "unknown", "queued"]
CHANNELS = [None, "sms", "whatsapp", "carrier-pigeon"]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)

events_strategy = st.lists(
    st.builds(
        event,
        message_id=st.sampled_from(MESSAGE_IDS),
        status=st.sampled_from(STATUSES),
        at=st.integers(min_value=0, max_value=3),  # few instants: many equal timestamps
        part=st.integers(min_value=1, max_value=2),
        total_parts=st.just(2),
        channel=st.sampled_from(CHANNELS),
        phone=st.sampled_from([None, "+393901234567", "+447700900123"]),
        customer_message_id=st.sampled_from([None, "order-1", "order-2"]),
        error=st.sampled_from([None, "absent subscriber"]),
    ),
    min_size=1,
    max_size=12,
    unique_by=lambda e: (e.message_id, e.status, e.event_time, e.part),
)


def _key(e: DeliveryEvent) -> tuple[str, str, datetime, int]:
    return (e.message_id, e.status, e.event_time, e.part)


def _snapshot(ledger: Ledger) -> dict[str, MessageDetail]:
    """Every message with its events, minus the times that depend on when it was recorded."""
    out: dict[str, MessageDetail] = {}
    for message_id in MESSAGE_IDS:
        detail = ledger.get_message(message_id)
        if detail is None:
            continue
        out[message_id] = dataclasses.replace(
            detail,
            first_received_at=EPOCH,
            updated_at=EPOCH,
            events=[dataclasses.replace(e, received_at=EPOCH) for e in detail.events],
        )
    return out


def _receipt(events: list[DeliveryEvent], run: str, n: int) -> Receipt:
    return Receipt(receipt_id=f"{run}-{n}", received_at=0.0, events=tuple(events))


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(distinct=events_strategy, data=st.data())
def test_any_arrival_order_and_split_gives_the_same_ledger(
    ledger: Ledger, distinct: list[DeliveryEvent], data: st.DataObject
) -> None:
    # Given the distinct events plus some exact copies, shuffled and split into receipts
    copies = data.draw(st.lists(st.sampled_from(distinct), max_size=8), label="copies")
    arrivals = data.draw(st.permutations(distinct + copies), label="arrival order")
    cuts = data.draw(
        st.lists(st.booleans(), min_size=len(arrivals) - 1, max_size=len(arrivals) - 1),
        label="cuts",
    )
    batches: list[list[DeliveryEvent]] = [[arrivals[0]]]
    for ev, cut in zip(arrivals[1:], cuts, strict=True):
        if cut:
            batches.append([])
        batches[-1].append(ev)
    redeliver = data.draw(st.sampled_from(range(len(batches))), label="redelivered receipt")

    # When recorded once in a canonical order, in one receipt
    ledger.purge(FAR_FUTURE)
    canonical = sorted(distinct + copies, key=lambda e: (_key(e), e.raw))
    ledger.record(_receipt(canonical, uuid.uuid4().hex, 0))
    expected = _snapshot(ledger)

    # And recorded again from scratch in the drawn order, one receipt redelivered
    ledger.purge(FAR_FUTURE)
    run = uuid.uuid4().hex
    receipts = [_receipt(batch, run, n) for n, batch in enumerate(batches)]
    latencies = 0
    for rec in receipts:
        latencies += len(ledger.record(rec).latencies)
    assert ledger.record(receipts[redeliver]).already_recorded

    # Then the ledger holds the same rows
    actual = _snapshot(ledger)
    assert actual == expected

    # And each message is what the one rule says of its distinct events
    occurrences = Counter(_key(e) for e in distinct + copies)
    for message_id, detail in actual.items():
        mine = [e for e in distinct if e.message_id == message_id]
        state = reduce_state(mine)
        assert detail.status == state.status
        assert detail.status_time == state.status_time
        assert (detail.sent_at, detail.final_at, detail.read_at) == (
            state.sent_at,
            state.final_at,
            state.read_at,
        )
        assert (detail.channel, detail.phone, detail.error) == (
            state.channel,
            state.phone,
            state.error,
        )
        assert detail.customer_message_id == state.customer_message_id
        assert detail.latency_seconds == state.latency_seconds
        assert detail.event_count == len(mine)
        assert detail.duplicate_count == sum(occurrences[_key(e)] - 1 for e in mine)
        assert sorted(r.duplicates for r in detail.events) == sorted(
            occurrences[_key(e)] - 1 for e in mine
        )

    # And each message with a latency reported it exactly once
    assert latencies == sum(1 for d in actual.values() if d.latency_seconds is not None)
    counts = ledger.counts()
    assert (counts.events, counts.duplicates) == (len(distinct), len(copies))
