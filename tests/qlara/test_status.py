"""The status rule: one pure function, independent of arrival order."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qlara import part_states, reduce_state

T0 = datetime(2025, 4, 8, 14, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Ev:
    status: str
    event_time: datetime
    part: int = 1
    channel: str | None = "sms"
    customer_message_id: str | None = None
    phone: str | None = None
    error: str | None = None
    total_parts: int = 1
    source: str = "webhook"


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_a_final_status_outranks_a_later_intermediate_one() -> None:
    state = reduce_state([Ev("delivered", at(1)), Ev("sent", at(5))])
    assert (state.status, state.is_final) == ("delivered", True)


def test_among_finals_the_latest_event_time_wins() -> None:
    state = reduce_state([Ev("error", at(2), error="boom"), Ev("delivered", at(1))])
    assert (state.status, state.error) == ("error", "boom")


def test_finals_at_the_same_instant_are_decided_by_precedence() -> None:
    state = reduce_state([Ev("expired", at(1)), Ev("delivered", at(1)), Ev("error", at(1))])
    assert state.status == "delivered"


def test_read_sets_read_time_and_never_the_status() -> None:
    state = reduce_state([Ev("sent", at(0)), Ev("read", at(3)), Ev("read", at(2))])
    assert (state.status, state.read_at) == ("sent", at(2))


def test_a_message_with_only_a_read_receipt_has_no_status() -> None:
    state = reduce_state([Ev("read", at(3))])
    assert state.status is None
    assert state.read_at == at(3)


def test_latency_is_final_minus_first_sent() -> None:
    state = reduce_state([Ev("sent", at(1)), Ev("sent", at(0)), Ev("delivered", at(10))])
    assert state.latency_seconds == 600.0


def test_latency_is_unknown_until_both_ends_are_known() -> None:
    assert reduce_state([Ev("delivered", at(10))]).latency_seconds is None
    assert reduce_state([Ev("sent", at(10))]).latency_seconds is None


def test_an_unknown_status_is_an_intermediate_one() -> None:
    state = reduce_state([Ev("queued", at(9)), Ev("expired", at(1))])
    assert state.status == "expired"


def test_identity_fields_come_from_the_earliest_event_that_has_them() -> None:
    state = reduce_state(
        [Ev("delivered", at(2), phone="+392"), Ev("sent", at(1), phone="+391", channel=None)]
    )
    assert (state.phone, state.channel) == ("+391", "sms")


def test_an_empty_set_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one event"):
        reduce_state([])


def test_every_order_of_a_small_set_gives_the_same_state() -> None:
    events = [
        Ev("sent", at(0)),
        Ev("delivered", at(4)),
        Ev("error", at(4)),
        Ev("read", at(5)),
        Ev("received", at(2)),
        Ev("mystery", at(3)),
    ]
    states = {reduce_state(p) for p in itertools.permutations(events)}
    assert len(states) == 1


def part(n: int, of: int, status: str, minutes: float, error: str | None = None) -> Ev:
    return Ev(status, at(minutes), part=n, total_parts=of, error=error)


def test_a_failed_part_fails_the_message_even_when_a_later_part_was_delivered() -> None:
    # part 1/2 "Not delivered" at :44, then part 2/2 delivered at :45
    state = reduce_state(
        [Ev("sent", at(0)), part(1, 2, "error", 44, "Not delivered"), part(2, 2, "delivered", 45)]
    )

    assert (state.status, state.is_final, state.error) == ("error", True, "Not delivered")
    assert state.status_time == at(44)
    assert state.final_at == at(45)  # final once its last part was
    assert state.latency_seconds == 45 * 60


def test_a_message_is_final_only_when_every_part_is() -> None:
    state = reduce_state([part(1, 2, "delivered", 1)])

    assert (state.status, state.is_final, state.final_at) == ("sent", False, None)
    assert state.status_time == at(1)


def test_a_message_is_delivered_only_when_every_part_was() -> None:
    state = reduce_state(
        [part(1, 3, "delivered", 3), part(3, 3, "delivered", 1), part(2, 3, "delivered", 2)]
    )

    assert (state.status, state.is_final, state.final_at, state.error) == (
        "delivered",
        True,
        at(3),
        None,
    )


def test_an_in_flight_part_shows_the_furthest_intermediate_status() -> None:
    state = reduce_state([part(1, 2, "error", 1, "x"), part(2, 2, "received", 2)])

    assert (state.status, state.is_final, state.error) == ("received", False, None)


def test_of_two_failed_parts_the_latest_names_the_failure() -> None:
    state = reduce_state(
        [part(1, 3, "expired", 5), part(2, 3, "error", 4, "Absent"), part(3, 3, "delivered", 6)]
    )

    assert (state.status, state.status_time, state.final_at) == ("expired", at(5), at(6))


def test_part_states_list_every_part_with_its_deciding_event() -> None:
    parts = part_states(
        [
            part(1, 3, "sent", 0),
            part(1, 3, "error", 2, "Not delivered"),
            part(3, 3, "delivered", 1),
            Ev("read", at(9), part=2, total_parts=3),
        ]
    )

    assert [(p.part, p.total_parts, p.status, p.is_final) for p in parts] == [
        (1, 3, "error", True),
        (2, 3, None, False),
        (3, 3, "delivered", True),
    ]
    assert parts[0].event is not None
    assert parts[0].event.error == "Not delivered"


statuses = st.sampled_from(
    ["sent", "received", "delivered", "read", "error", "expired", "unknown", "queued"]
)
events = st.builds(
    Ev,
    status=statuses,
    event_time=st.integers(min_value=0, max_value=5).map(at),
    part=st.integers(min_value=1, max_value=2),
    channel=st.sampled_from([None, "sms", "rcs"]),
    phone=st.sampled_from([None, "+391", "+392"]),
    error=st.sampled_from([None, "e1", "e2"]),
    total_parts=st.integers(min_value=1, max_value=3),
)


@given(st.lists(events, min_size=1, max_size=12), st.randoms(use_true_random=False))
def test_the_state_depends_on_the_set_of_events_only(evs: list[Ev], rnd: object) -> None:
    shuffled = list(evs) + list(evs[: len(evs) // 2])  # duplicates too
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert reduce_state(shuffled) == reduce_state(evs)


@given(st.lists(events, min_size=1, max_size=12))
def test_final_and_delivered_are_what_every_part_says(evs: list[Ev]) -> None:
    state = reduce_state(evs)
    reported = [e for e in evs if e.status != "read"]
    total = max([e.total_parts for e in reported] + [e.part for e in reported], default=1)
    finals_by_part = {
        n: {e.status for e in reported if e.part == n and e.status in FINALS}
        for n in range(1, total + 1)
    }

    every_part_final = all(finals_by_part.values())
    assert state.is_final == (bool(reported) and every_part_final)
    if state.status == "delivered" and total > 1:
        assert all("delivered" in statuses for statuses in finals_by_part.values())
    if state.is_final and state.status != "delivered":
        # some part's deciding final is a failure, and the message names it
        assert state.status in {"error", "expired"}
        assert any(state.status in statuses for statuses in finals_by_part.values())


FINALS = {"delivered", "error", "expired"}


def polled(status: str, minutes: float, error: str | None = None) -> Ev:
    return Ev(status, at(minutes), error=error, source="poll")


def test_a_polled_final_fills_in_a_message_but_measures_no_latency() -> None:
    state = reduce_state([Ev("sent", at(0)), polled("delivered", 30)])
    assert (state.status, state.is_final, state.final_at) == ("delivered", True, at(30))
    assert state.final_polled
    assert state.latency_seconds is None  # the poll's time is not the delivery's


def test_a_polled_status_never_overturns_a_webhook_final() -> None:
    # The webhook's error, reported earlier than the poll, stands
    state = reduce_state(
        [Ev("sent", at(0)), Ev("error", at(2), error="x"), polled("delivered", 30)]
    )
    assert (state.status, state.error, state.final_polled) == ("error", "x", False)
    assert state.latency_seconds == 120


def test_a_webhook_arriving_after_the_poll_takes_its_place_with_its_real_time() -> None:
    events = [Ev("sent", at(0)), polled("error", 30, "Absent subscriber"), Ev("delivered", at(1))]
    for order in itertools.permutations(events):
        state = reduce_state(order)
        assert (state.status, state.status_time, state.final_polled) == ("delivered", at(1), False)
        assert state.latency_seconds == 60


@given(
    st.lists(
        st.builds(
            Ev,
            status=st.sampled_from(["sent", "delivered", "error", "expired", "received"]),
            event_time=st.integers(min_value=0, max_value=5).map(at),
            source=st.sampled_from(["webhook", "poll"]),
        ),
        min_size=1,
        max_size=8,
    ),
    st.randoms(),
)
def test_with_polled_events_the_state_is_still_a_function_of_the_set(
    events: list[Ev], rnd: object
) -> None:
    shuffled = list(events)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert reduce_state(shuffled) == reduce_state(events)
    webhook_finals = [e for e in events if e.status in FINAL and e.source == "webhook"]
    if webhook_finals:  # whatever was polled, a webhook's final decides
        assert not reduce_state(events).final_polled


FINAL = {"delivered", "error", "expired"}


def test_an_absurd_part_count_costs_nothing_and_leaves_the_message_in_flight() -> None:
    # A webhook claiming two billion parts (kept as sent) must not make two billion states
    events = [Ev("sent", at(0)), Ev("delivered", at(1), total_parts=2**31 - 1)]
    state = reduce_state(events)
    assert (state.status, state.is_final) == ("sent", False)
    parts = part_states(events)
    assert len(parts) == 256  # parts 1-255, and the first part missing above them
    assert parts[-1].part == 256
    assert parts[-1].event is None


def test_past_255_parts_a_message_whose_every_part_came_is_still_final() -> None:
    events = [Ev("delivered", at(1), part=n, total_parts=300) for n in range(1, 301)]
    state = reduce_state(events)
    assert (state.status, state.is_final) == ("delivered", True)
    assert len(part_states(events)) == 300
