"""A circuit breaker: stop calling a failing Qlara, then probe it back gradually.

- **closed**: calls go; ``failures`` consecutive failures (5xx, timeouts, no connection) open it.
- **open**: calls are refused at once (:class:`~qlara_api.errors.CircuitOpen`) for ``cooldown``
  seconds.
- **half-open**: one probe at a time; ``successes`` probes in a row close it, a failed one opens it
  again for twice the previous cooldown (at most ``max_cooldown``).

Answers that say the request was wrong (401, 403, 404, 429) are not failures of the service and
leave the breaker as it is. The clock is injectable so that tests step it exactly.
"""

from __future__ import annotations

import threading
import time
from typing import Literal

from qlara_api.limits import Clock

State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """Thread-safe; call :meth:`allow` before a call and :meth:`record` with its outcome."""

    def __init__(
        self,
        *,
        failures: int = 5,
        cooldown: float = 30.0,
        max_cooldown: float = 600.0,
        successes: int = 3,
        clock: Clock = time.monotonic,
    ) -> None:
        self._threshold = failures
        self._base_cooldown = cooldown
        self._max_cooldown = max_cooldown
        self._needed = successes
        self._clock = clock
        self._lock = threading.Lock()
        self._state: State = "closed"
        self._failed = 0
        self._succeeded = 0
        self._cooldown = cooldown
        self._opened_at = 0.0
        self._probing = False

    @property
    def state(self) -> State:
        with self._lock:
            self._advance()
            return self._state

    def retry_in(self) -> float:
        """Seconds until the open breaker lets a probe through (0 when not open)."""
        with self._lock:
            self._advance()
            if self._state != "open":
                return 0.0
            return max(self._opened_at + self._cooldown - self._clock(), 0.0)

    def allow(self) -> bool:
        """Whether a call may go now (a half-open breaker lets one probe at a time)."""
        with self._lock:
            self._advance()
            if self._state == "closed":
                return True
            if self._state == "half_open" and not self._probing:
                self._probing = True
                return True
            return False

    def record(self, ok: bool) -> None:
        """The outcome of a call :meth:`allow` let through."""
        with self._lock:
            self._probing = False
            if self._state == "half_open":
                if ok:
                    self._succeeded += 1
                    if self._succeeded >= self._needed:
                        self._state, self._failed, self._cooldown = "closed", 0, self._base_cooldown
                else:
                    self._open(min(self._cooldown * 2, self._max_cooldown))
                return
            if ok:
                self._failed = 0
                return
            self._failed += 1
            if self._failed >= self._threshold:
                self._open(self._base_cooldown)

    def _open(self, cooldown: float) -> None:
        self._state, self._cooldown, self._opened_at = "open", cooldown, self._clock()
        self._succeeded = 0

    def _advance(self) -> None:
        if self._state == "open" and self._clock() >= self._opened_at + self._cooldown:
            self._state, self._succeeded, self._probing = "half_open", 0, False
