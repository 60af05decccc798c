"""Per-process counters of what became of each webhook request.

Every request to the intake ends in exactly one outcome. These counters live in the process
(``app.state.outcomes``); the intake counts the same outcomes in
``qlara_webhook_requests_total{outcome}``, which ``GET /metrics`` exposes for all processes.
"""

from __future__ import annotations

import threading
from typing import Literal, get_args

Outcome = Literal[
    "accepted",  # 200, enqueued to Redis
    "spooled",  # 200, written to the local spool (Redis down, slow or full)
    "invalid",  # 400, the body could not be read as events
    "unauthorized",  # 401 or 403: token, Basic credentials or source address refused
    "rate_limited",  # 429: too many failed authentications from this client
    "method_not_allowed",  # 405
    "too_large",  # 413
    "unsupported_media",  # 415
    "unavailable",  # 503, neither Redis nor the spool could take it
]

OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)


class Outcomes:
    """Monotonic counters, one per :data:`Outcome`, plus items refused inside arrays."""

    __slots__ = ("_counts", "_lock", "rejected_items")

    def __init__(self) -> None:
        self._counts: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
        self._lock = threading.Lock()
        #: Array items refused one by one (their request may still be accepted).
        self.rejected_items = 0

    def add(self, outcome: Outcome, rejected_items: int = 0) -> None:
        """Count one request with ``outcome`` and the array items it had refused."""
        with self._lock:
            self._counts[outcome] += 1
            self.rejected_items += rejected_items

    def snapshot(self) -> dict[str, int]:
        """A copy of the counters, ``rejected_items`` included."""
        with self._lock:
            return {**self._counts, "rejected_items": self.rejected_items}

    def __getitem__(self, outcome: Outcome) -> int:
        return self._counts[outcome]
