"""Sends the application reports meet their message, whichever id they name and whichever
arrives first (the rule of :mod:`ledger.joining`), on both backends."""

from __future__ import annotations

import dataclasses
import random
import threading
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select

from ledger import Ledger, MessageDetail
from ledger.schema import customer_ids, event_minutes, messages
from qlara import DeliveryEvent, Receipt, Shape, Source, placeholder_id, reduce_state
from tests.ledger.samples import T0, event, receipt

FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


def send(
    message_id: str | None = None,
    customer_id: str | None = None,
    at: float = 0,
    channel: str = "sms",
) -> DeliveryEvent:
    """A send the application reported, by either id or both."""
    base = event(
        message_id or placeholder_id(customer_id or ""),
        "sent",
        at,
        channel=channel,
        customer_message_id=customer_id,
    )
    return msgspec.structs.replace(base, shape=Shape.APP, source=Source.APP)


def webhook(
    message_id: str, status: str, at: float, customer_id: str | None = None
) -> DeliveryEvent:
    return event(message_id, status, at, customer_message_id=customer_id)


def _count(ledger: Ledger, table: object) -> int:
    with ledger._writer.begin() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def test_a_send_by_message_id_meets_its_webhooks(ledger: Ledger) -> None:
    # Given a send by Qlara's messageId, then a shape-C delivery naming only that id
    ledger.record(receipt(send("m-1", at=0)))
    result = ledger.record(receipt(webhook("m-1", "delivered", 4)))

    # Then it is one delivered message, its latency from the send measured once
    detail = ledger.get_message("m-1")
    assert detail is not None
    assert (detail.status, detail.is_final, detail.latency_seconds) == ("delivered", True, 4.0)
    assert [e.source for e in sorted(detail.events, key=lambda e: e.event_time)] == [
        "app",
        "webhook",
    ]
    assert [o.seconds for o in result.latencies] == [4.0]


def test_a_send_by_customer_id_waits_under_a_placeholder_then_joins(ledger: Ledger) -> None:
    # Given a send the application named by customerMessageId alone
    ledger.record(receipt(send(customer_id="order-7", at=0)))
    waiting = ledger.get_message(placeholder_id("order-7"))
    assert waiting is not None
    assert (waiting.status, waiting.is_final, waiting.customer_message_id) == (
        "sent",
        False,
        "order-7",
    )
    assert ledger.webhook_stats(T0 + timedelta(minutes=5)).pending == 1

    # When Qlara's delivery names both ids
    result = ledger.record(receipt(webhook("m-7", "delivered", 6, customer_id="order-7")))

    # Then the placeholder is gone and the message holds both events, measured once
    assert ledger.get_message(placeholder_id("order-7")) is None
    detail = ledger.get_message("m-7")
    assert detail is not None
    assert (detail.status, detail.latency_seconds, detail.event_count) == ("delivered", 6.0, 2)
    assert sorted(e.source for e in detail.events) == ["app", "webhook"]
    assert [o.seconds for o in result.latencies] == [6.0]
    assert ledger.webhook_stats(T0 + timedelta(minutes=5)).pending == 0

    # And a later send by the same customer id goes straight to the message
    ledger.record(receipt(send(customer_id="order-7", at=0)))
    again = ledger.get_message("m-7")
    assert again is not None
    assert (again.event_count, again.duplicate_count) == (2, 1)
    assert ledger.get_message(placeholder_id("order-7")) is None


def test_a_webhook_first_then_the_send_by_customer_id(ledger: Ledger) -> None:
    ledger.record(receipt(webhook("m-2", "delivered", 9, customer_id="order-2")))
    result = ledger.record(receipt(send(customer_id="order-2", at=1)))

    assert ledger.get_message(placeholder_id("order-2")) is None
    detail = ledger.get_message("m-2")
    assert detail is not None
    assert (detail.sent_at, detail.latency_seconds) == (T0 + timedelta(seconds=1), 8.0)
    assert [o.seconds for o in result.latencies] == [8.0]


def test_both_in_one_receipt_in_either_order(ledger: Ledger) -> None:
    for n, events in enumerate(
        (
            [send(customer_id="order-a", at=0), webhook("m-a", "delivered", 3, "order-a")],
            [webhook("m-b", "delivered", 3, "order-b"), send(customer_id="order-b", at=0)],
        )
    ):
        result = ledger.record(receipt(*events))
        message_id = ("m-a", "m-b")[n]
        detail = ledger.get_message(message_id)
        assert detail is not None
        assert (detail.status, detail.latency_seconds, detail.event_count) == (
            "delivered",
            3.0,
            2,
        )
        assert [o.seconds for o in result.latencies] == [3.0]
    assert ledger.get_message(placeholder_id("order-a")) is None
    assert ledger.get_message(placeholder_id("order-b")) is None


def test_copies_of_a_send_join_as_duplicates(ledger: Ledger) -> None:
    # Given the same send reported twice under the placeholder, and once more by both ids
    ledger.record(receipt(send(customer_id="order-3", at=0)))
    ledger.record(receipt(send(customer_id="order-3", at=0)))
    ledger.record(receipt(send("m-3", "order-3", at=0)))

    # Then one sent event, arrived three times
    assert ledger.get_message(placeholder_id("order-3")) is None
    detail = ledger.get_message("m-3")
    assert detail is not None
    assert (detail.event_count, detail.duplicate_count) == (1, 2)
    assert [e.duplicates for e in detail.events] == [2]


def test_a_delivery_naming_only_the_message_id_cannot_join_a_customer_id_send(
    ledger: Ledger,
) -> None:
    # Shape C names no customerMessageId: nothing says which send it answers
    ledger.record(receipt(send(customer_id="order-4", at=0)))
    ledger.record(receipt(webhook("m-4", "delivered", 2)))
    assert ledger.get_message(placeholder_id("order-4")) is not None
    # until an event names both ids
    ledger.record(receipt(webhook("m-4", "read", 5, customer_id="order-4")))
    assert ledger.get_message(placeholder_id("order-4")) is None
    detail = ledger.get_message("m-4")
    assert detail is not None
    assert (detail.status, detail.latency_seconds, detail.event_count) == ("delivered", 2.0, 3)


def test_the_first_binding_of_a_customer_id_wins(ledger: Ledger) -> None:
    ledger.record(receipt(webhook("m-5", "sent", 0, customer_id="order-5")))
    ledger.record(receipt(webhook("m-6", "sent", 0, customer_id="order-5")))  # reused
    ledger.record(receipt(send(customer_id="order-5", at=1)))
    first, second = ledger.get_message("m-5"), ledger.get_message("m-6")
    assert first is not None
    assert second is not None
    assert (first.event_count, second.event_count) == (2, 1)


def test_a_message_recorded_without_a_customer_id_row_is_still_found(ledger: Ledger) -> None:
    # Given a message whose binding row is gone (recorded before the table existed)
    ledger.record(receipt(webhook("m-8", "delivered", 5, customer_id="order-8")))
    with ledger._writer.begin() as conn:
        conn.execute(delete(customer_ids))
    # When the application reports its send by customer id
    ledger.record(receipt(send(customer_id="order-8", at=0)))
    # Then it joins the message, not a placeholder
    assert ledger.get_message(placeholder_id("order-8")) is None
    detail = ledger.get_message("m-8")
    assert detail is not None
    assert detail.latency_seconds == 5.0


def test_purge_forgets_customer_ids_whose_message_is_gone(ledger: Ledger) -> None:
    ledger.record(receipt(webhook("m-9", "delivered", 5, customer_id="order-9")))
    ledger.record(receipt(send(customer_id="order-10", at=0)))
    assert _count(ledger, customer_ids) == 2
    ledger.purge(FAR_FUTURE)
    assert _count(ledger, customer_ids) == 0
    assert _count(ledger, messages) == 0


# -- the rule is a function of the set of events ------------------------------------------

ORDERS = {"m-1": "order-1", "m-2": "order-2", "m-3": None}
_OFFSET = {"message": 0.25, "customer": 0.5, "both": 0.75}

_arrivals = st.lists(
    st.one_of(
        # A webhook names the customer id at even seconds only (shape C never does)
        st.builds(
            lambda m, status, at: webhook(m, status, at, ORDERS[m] if at % 2 == 0 else None),
            st.sampled_from(sorted(ORDERS)),
            st.sampled_from(["sent", "delivered", "error", "read"]),
            st.integers(min_value=0, max_value=3),
        ),
        # Sends at times no webhook event has, a different one for each way of naming the
        # message: two events with one key are copies of one event (the ledger keeps the
        # first copy it stores), so distinct content never shares a key here.
        st.builds(
            lambda m, at, by: send(
                m if by != "customer" or ORDERS[m] is None else None,
                ORDERS[m] if by != "message" else None,
                at + _OFFSET[by],
            ),
            st.sampled_from(sorted(ORDERS)),
            st.integers(min_value=0, max_value=3),
            st.sampled_from(["message", "customer", "both"]),
        ),
    ),
    min_size=1,
    max_size=10,
)


def _snapshot(ledger: Ledger) -> dict[str, MessageDetail]:
    out: dict[str, MessageDetail] = {}
    ids = [*ORDERS, *(placeholder_id(c) for c in ORDERS.values() if c is not None)]
    for message_id in ids:
        detail = ledger.get_message(message_id)
        if detail is None:
            continue
        out[message_id] = dataclasses.replace(
            detail,
            first_received_at=T0,
            updated_at=T0,
            events=sorted(
                (dataclasses.replace(e, received_at=T0, raw=b"") for e in detail.events),
                key=lambda e: (e.event_time, e.status, e.source, e.part),
            ),
        )
    return out


def _owner(ev: DeliveryEvent, bound: set[str]) -> str:
    """Where the rule puts an event, given which customer ids some event binds."""
    if ev.by_customer_id_only and ev.customer_message_id in bound:
        return next(m for m, c in ORDERS.items() if c == ev.customer_message_id)
    return ev.message_id


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(arrivals=_arrivals, data=st.data())
def test_any_arrival_order_and_split_gives_the_same_ledger(
    ledger: Ledger, arrivals: list[DeliveryEvent], data: st.DataObject
) -> None:
    order = data.draw(st.permutations(arrivals), label="arrival order")
    cuts = data.draw(
        st.lists(st.booleans(), min_size=len(order) - 1, max_size=len(order) - 1), label="cuts"
    )
    batches: list[list[DeliveryEvent]] = [[order[0]]]
    for ev, cut in zip(order[1:], cuts, strict=True):
        if cut:
            batches.append([])
        batches[-1].append(ev)

    # One at a time, in the drawn order and split
    ledger.purge(FAR_FUTURE)
    run = uuid.uuid4().hex
    latencies = 0
    for n, batch in enumerate(batches):
        latencies += len(ledger.record(_receipt(batch, f"{run}-{n}")).latencies)
    actual = _snapshot(ledger)

    # All at once, in a canonical order
    ledger.purge(FAR_FUTURE)
    canonical = sorted(arrivals, key=lambda e: (e.message_id, e.status, e.event_time, e.raw))
    ledger.record(_receipt(canonical, uuid.uuid4().hex))
    assert actual == _snapshot(ledger)

    # And each message is what the one rule says of the events the joining rule gives it
    bound = {
        ev.customer_message_id
        for ev in arrivals
        if ev.customer_message_id is not None and not ev.by_customer_id_only
    }
    owned: dict[str, set[tuple[str, datetime, int, str]]] = {}
    copies: Counter[str] = Counter()
    for ev in arrivals:
        owner = _owner(ev, bound)
        key = (ev.status, ev.event_time, ev.part, owner)
        if key in owned.setdefault(owner, set()):
            copies[owner] += 1
        owned[owner].add(key)
    assert set(actual) == set(owned)
    for message_id, detail in actual.items():
        mine = [e for e in arrivals if _owner(e, bound) == message_id]
        state = reduce_state(mine)
        assert (detail.status, detail.sent_at, detail.final_at, detail.read_at) == (
            state.status,
            state.sent_at,
            state.final_at,
            state.read_at,
        )
        assert detail.latency_seconds == state.latency_seconds
        assert detail.event_count == len(owned[message_id])
        assert detail.duplicate_count == copies[message_id]
    assert latencies == sum(1 for d in actual.values() if d.latency_seconds is not None)


def _receipt(events: list[DeliveryEvent], receipt_id: str) -> Receipt:
    return Receipt(receipt_id=receipt_id, received_at=0.0, events=tuple(events))


# -- concurrency: a send and its binding event recorded at the same instant ---------------


@pytest.mark.parametrize("rounds", [40])
def test_a_send_and_its_binding_event_recorded_at_once_meet(database_url: str, rounds: int) -> None:
    Ledger.connect(database_url).close()
    errors: list[BaseException] = []
    writers = [Ledger.connect(database_url, migrate=False) for _ in range(2)]
    try:
        for n in range(rounds):
            customer_id, message_id = f"race-{n}", f"m-race-{n}"
            work = [
                receipt(send(customer_id=customer_id, at=0)),
                receipt(webhook(message_id, "delivered", 2, customer_id)),
            ]
            random.Random(n).shuffle(work)
            start = threading.Barrier(2)

            def record(writer: Ledger, rec: Receipt, start: threading.Barrier = start) -> None:
                try:
                    start.wait()
                    writer.record(rec)
                except BaseException as exc:
                    errors.append(exc)

            threads = [
                threading.Thread(target=record, args=(w, r))
                for w, r in zip(writers, work, strict=True)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert errors == []
            assert writers[0].get_message(placeholder_id(customer_id)) is None, n
            detail = writers[0].get_message(message_id)
            assert detail is not None
            assert (detail.event_count, detail.latency_seconds) == (2, 2.0), n
    finally:
        for writer in writers:
            writer.close()


def test_sends_are_not_webhook_traffic(ledger: Ledger) -> None:
    # Given Qlara's event received at T0, then the application's sends a minute later
    ledger.record(receipt(webhook("m-1", "delivered", 0), received_at=T0))
    later = T0 + timedelta(minutes=1)
    ledger.record(
        receipt(send("m-2", at=60), send(customer_id="order-3", at=60), received_at=later)
    )

    # Then the webhook's figures know only Qlara's event
    stats = ledger.webhook_stats(T0 + timedelta(minutes=2))
    assert stats.last_event_at == {"sms": T0}
    assert (stats.events_last_5m, stats.events_last_60m) == (1, 1)
    assert ledger.last_event_at() == {"sms": T0}
    # and so do the per-minute counts the charts read
    with ledger._writer.begin() as conn:
        minutes = conn.execute(
            select(event_minutes.c.status, func.sum(event_minutes.c.events)).group_by(
                event_minutes.c.status
            )
        ).all()
    assert [tuple(row) for row in minutes] == [("delivered", 1)]
    # while the sends are pending messages
    assert stats.pending == 2
