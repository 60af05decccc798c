"""The rate limiter and the circuit breaker, on a clock the test steps: exact, not timed."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from qlara_api import CircuitBreaker, Limits, RateLimiter
from qlara_api.fake import most_in_any_window


class SteppedClock:
    """A clock that moves only when something sleeps, or the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.now += seconds


@settings(max_examples=60, deadline=None)
@given(
    per_second=st.integers(min_value=1, max_value=20),
    per_minute=st.integers(min_value=1, max_value=60),
    gaps=st.lists(st.floats(min_value=0, max_value=3), min_size=1, max_size=150),
)
def test_no_second_and_no_minute_ever_holds_more_than_its_limit(
    per_second: int, per_minute: int, gaps: list[float]
) -> None:
    clock = SteppedClock()
    limiter = RateLimiter(Limits(per_second, per_minute), clock=clock, sleep=clock.sleep)
    sent = []
    for gap in gaps:  # callers arriving at any pace
        clock.now += gap
        limiter.acquire()
        sent.append(clock.now)

    assert most_in_any_window(sent, 1.0) <= per_second
    assert most_in_any_window(sent, 60.0) <= per_minute


def test_requests_are_spaced_evenly_not_sent_in_a_burst() -> None:
    clock = SteppedClock()
    limiter = RateLimiter(Limits(per_second=50, per_minute=1000), clock=clock, sleep=clock.sleep)
    start = clock.now
    times = []
    for _ in range(100):
        limiter.acquire()
        times.append(clock.now - start)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 1 / 50  # a 50th of a second apart at least
    assert times[-1] < 2.2  # and no slower than the limit asks (99 gaps of 1.05 / 50 s)


def test_a_pause_holds_every_request_until_it_ends() -> None:
    clock = SteppedClock()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    limiter.pause(12)
    start = clock.now
    limiter.acquire()
    assert clock.now - start == 12


def test_the_breaker_opens_after_repeated_failures_and_probes_back_gradually() -> None:
    clock = SteppedClock()
    breaker = CircuitBreaker(failures=3, cooldown=30, successes=2, clock=clock)
    for _ in range(3):
        assert breaker.allow()
        breaker.record(ok=False)
    assert breaker.state == "open"
    assert not breaker.allow()
    assert breaker.retry_in() == 30

    clock.now += 30  # half-open: one probe at a time
    assert breaker.allow()
    assert not breaker.allow()
    breaker.record(ok=False)  # the probe failed: open again, twice as long
    assert (breaker.state, breaker.retry_in()) == ("open", 60)

    clock.now += 60
    for _ in range(2):
        assert breaker.allow()
        breaker.record(ok=True)
    assert breaker.state == "closed"
    assert all(breaker.allow() for _ in range(10))


def test_a_success_between_failures_keeps_the_breaker_closed() -> None:
    breaker = CircuitBreaker(failures=3, clock=SteppedClock())
    for ok in (False, False, True, False, False):
        breaker.record(ok=ok)
    assert breaker.state == "closed"
