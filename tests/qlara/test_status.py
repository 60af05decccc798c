"""The status rule: one pure function, independent of arrival order."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qlara import reduce_state

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
)


@given(st.lists(events, min_size=1, max_size=12), st.randoms(use_true_random=False))
def test_the_state_depends_on_the_set_of_events_only(evs: list[Ev], rnd: object) -> None:
    shuffled = list(evs) + list(evs[: len(evs) // 2])  # duplicates too
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert reduce_state(shuffled) == reduce_state(evs)
