"""Staying under Qlara's rate limits: token buckets, and a pause a 429 imposes.

Qlara limits each API key (FACTS.md): production 1,000 requests a minute in bursts of up to 50 a
second; trial 100 a minute, 10 a second. :class:`RateLimiter` lets a request through only when
the last second and the last minute hold fewer requests than their limits, so no second and
no minute ever sees more; a 429 answered anyway pauses it until the time Qlara named.

Written here rather than taken from a rate-limit library because the client needs two things
together: a pause set from the server's own ``retryAfter`` (or ``X-RateLimit-Reset``), and a
clock and sleep the tests replace, so that a test of the limits counts exactly, never times.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]

#: The windows' lengths: a little longer than Qlara's, so that a request delayed on its way
#: (while the next is not) cannot make Qlara count one too many in its own window.
SECOND = 1.05
MINUTE = 60.5
Sleep = Callable[[float], None]


@dataclass(frozen=True, slots=True)
class Limits:
    """An account's limits: ``per_second`` (the burst) and ``per_minute``. ``time_scale``
    shrinks both windows (a "second" lasts ``time_scale`` seconds), for demos and tests that
    run an hour's traffic in minutes."""

    per_second: int = 50
    per_minute: int = 1000
    time_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.per_second < 1 or self.per_minute < 1:
            raise ValueError("rate limits must be at least 1 request")
        if not self.time_scale > 0:
            raise ValueError("time_scale must be positive")


#: A trial account's limits.
TRIAL = Limits(per_second=10, per_minute=100)


class RateLimiter:
    """Sliding windows of one second and one minute, and a pause; thread-safe.

    A request may go when fewer than ``per_second`` requests went in the last second and
    fewer than ``per_minute`` in the last minute, so no window of either length, wherever it
    starts, holds more than the limit (a token bucket, refilled while it is spent, would let
    up to twice its size through in the first such window). Requests are also spaced by a
    ``per_second``-th of a second: a burst, served one by one at Qlara's end, reaches its
    limiter later than it left here and packs into its next second with the following one.
    :meth:`acquire` blocks (with ``sleep``) until then, and counts the request.
    """

    def __init__(
        self, limits: Limits = Limits(), *, clock: Clock = time.monotonic, sleep: Sleep = time.sleep
    ) -> None:
        self.limits = limits
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque()  # times of the last minute's requests, oldest first
        self._paused_until = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait until a request is allowed, count it; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                delay = self._delay(now)
                if delay <= 0:
                    self._sent.append(now)
                    return waited
            self._sleep(delay)
            waited += delay

    def pause(self, seconds: float) -> None:
        """Let nothing through for ``seconds`` (a 429's ``retryAfter``)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + max(seconds, 0.0))

    def _delay(self, now: float) -> float:
        if now < self._paused_until:
            return self._paused_until - now
        limits = self.limits
        minute, second = MINUTE * limits.time_scale, SECOND * limits.time_scale
        sent = self._sent
        while sent and sent[0] <= now - minute:
            sent.popleft()
        delays = [0.0]
        if sent:  # evenly spaced, never in a burst: a burst lands at Qlara's end compressed
            delays.append(sent[-1] + second / limits.per_second - now)
        if len(sent) >= limits.per_minute:
            delays.append(sent[len(sent) - limits.per_minute] + minute - now)
        if len(sent) >= limits.per_second:
            delays.append(sent[len(sent) - limits.per_second] + second - now)
        return max(delays)
