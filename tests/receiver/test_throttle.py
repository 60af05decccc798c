"""The failed-authentication limit, on a clock the test moves."""

from __future__ import annotations

import pytest

from receiver.throttle import FailureThrottle, retry_after


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_client_is_limited_after_its_burst_and_told_when_to_come_back() -> None:
    clock = Clock()
    throttle = FailureThrottle(burst=3, refill_per_s=0.5, clock=clock)

    assert [throttle.failed("10.0.0.1") for _ in range(3)] == [(None, False)] * 3
    assert throttle.failed("10.0.0.1") == (2.0, True)  # one token takes 2 s at 0.5/s
    assert throttle.failed("10.0.0.1") == (2.0, False)  # limited still, logged once
    assert throttle.failed("10.0.0.2") == (None, False)  # another client has its own

    clock.now += 2.0
    assert throttle.failed("10.0.0.1") == (None, False)  # a token came back
    assert throttle.failed("10.0.0.1") == (2.0, True)  # a new episode is logged again


def test_the_clients_remembered_are_bounded_forgetting_the_least_recent() -> None:
    clock = Clock()
    throttle = FailureThrottle(burst=1, refill_per_s=1.0, max_clients=2, clock=clock)

    throttle.failed("a")
    throttle.failed("b")
    throttle.failed("a")  # a is limited, and now the most recent
    throttle.failed("c")  # b is forgotten

    assert throttle.clients() == 2
    assert throttle.failed("b") == (None, False)  # b starts afresh, and a is forgotten
    assert throttle.failed("a") == (None, False)  # so a, limited before, starts afresh too


@pytest.mark.parametrize(("seconds", "header"), [(0.01, b"1"), (1.0, b"1"), (1.2, b"2")])
def test_retry_after_is_whole_seconds_and_never_zero(seconds: float, header: bytes) -> None:
    assert retry_after(seconds) == header
