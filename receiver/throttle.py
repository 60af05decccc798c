"""A limit on failed authentications per client, so that a flood of wrong tokens costs little.

Each client address has a token bucket: a failed authentication takes one token, and tokens
come back at ``refill_per_s`` up to ``burst``. A client whose bucket is empty is answered
``429`` with ``Retry-After`` instead of ``401``: no reject record, no log line per request
(one when the limit starts), no body read. A request with the right credentials is never
limited, whoever sends it: the check runs only after the credentials failed, so Qlara's real
traffic is never slowed, even from an address that also sent wrong ones.

Written by hand (a few lines over a dict) because the limit must live in the request path of
one process without a round trip; the buckets are bounded in number (the least recently
failed client is forgotten first), so a flood from many addresses cannot grow memory.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

#: Failed authentications a client may make at once, and how fast it may make more.
BURST = 20
REFILL_PER_S = 1.0
#: Clients remembered at most.
MAX_CLIENTS = 4096


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float
    limited: bool = False


class FailureThrottle:
    """Token buckets of failed authentications by client (see the module docstring)."""

    def __init__(
        self,
        *,
        burst: int = BURST,
        refill_per_s: float = REFILL_PER_S,
        max_clients: int = MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if burst < 1 or refill_per_s <= 0 or max_clients < 1:
            raise ValueError("burst and max_clients must be at least 1, refill_per_s above 0")
        self._burst = float(burst)
        self._refill = refill_per_s
        self._max = max_clients
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def failed(self, client: str) -> tuple[float | None, bool]:
        """Count one failed authentication of ``client``.

        Returns ``(None, False)`` while it is within its limit; otherwise the seconds until it
        may fail again (for ``Retry-After``) and whether this failure is the one that started
        the limit (to log once).
        """
        now = self._clock()
        with self._lock:
            bucket = self._buckets.pop(client, None)
            if bucket is None:
                bucket = _Bucket(self._burst, now)
            else:
                bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.at) * self._refill)
                bucket.at = now
            self._buckets[client] = bucket  # most recently failed last
            while len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                bucket.limited = False
                return None, False
            started, bucket.limited = not bucket.limited, True
            return (1.0 - bucket.tokens) / self._refill, started

    def clients(self) -> int:
        """How many clients are remembered now."""
        with self._lock:
            return len(self._buckets)


def retry_after(seconds: float) -> bytes:
    """A ``Retry-After`` header value: whole seconds, at least 1."""
    return b"%d" % max(1, math.ceil(seconds))
