"""What the explorer's queries return: frozen values, every datetime timezone-aware UTC."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ledger import DeadLetter, MessageSummary


@dataclass(frozen=True, slots=True)
class Outcomes:
    """Messages whose record changed in a range (``updated_at``), by current status.

    ``delivered``/``failed``/``expired`` count final messages; the rates are their shares
    of the final ones (``None`` when there is none). ``latency_p50``/``p95`` are sent ->
    delivered seconds (nearest rank) over delivered messages that have both times: exact
    when ``latency_exact``, else the middle of the histogram bucket the rank falls in
    (within 2.2 %: a window of more than ``dashboard.queries.EXACT_LATENCIES`` deliveries).
    """

    messages: int
    by_status: dict[str, int]
    delivered: int
    failed: int
    expired: int
    latency_p50: float | None
    latency_p95: float | None
    latency_exact: bool = True

    @property
    def final(self) -> int:
        """Messages with a final status."""
        return self.delivered + self.failed + self.expired

    @property
    def delivery_rate(self) -> float | None:
        """Delivered share of the final messages."""
        return self.delivered / self.final if self.final else None

    @property
    def failure_rate(self) -> float | None:
        """Error share of the final messages."""
        return self.failed / self.final if self.final else None

    @property
    def expiry_rate(self) -> float | None:
        """Expired share of the final messages."""
        return self.expired / self.final if self.final else None


@dataclass(frozen=True, slots=True)
class RatePoint:
    """Distinct events of ``status`` received in the bucket starting at ``at``."""

    at: datetime
    status: str
    events: int


@dataclass(frozen=True, slots=True)
class Gap:
    """A stretch of ``[start, end)`` with no event received, longer than the threshold."""

    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        """The gap's length."""
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True, slots=True)
class LastEvent:
    """A channel's newest event by receipt time, and its age at the time asked."""

    channel: str
    at: datetime
    age_seconds: float


@dataclass(frozen=True, slots=True)
class MessageList:
    """One page of messages newest update first; ``next_cursor`` continues it, ``None`` on
    the last page."""

    items: list[MessageSummary]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Failures:
    """Failed (error) and expired messages of a range, by error class.

    ``by_class`` maps (channel, error class) to a count; ``top_errors`` lists the most
    frequent raw error texts as (channel, text, count), most frequent first; ``over_time``
    counts by (bucket start, error class); ``expired_share`` is expired over final messages
    (``None`` when there is none).
    """

    by_class: dict[tuple[str, str], int]
    top_errors: list[tuple[str, str, int]]
    over_time: list[tuple[datetime, str, int]]
    expired_share: float | None


@dataclass(frozen=True, slots=True)
class Place:
    """The messages of a range bound for one country (ISO code, ``None``: not known) and one
    number range's original operator (``None``: the plan names none), on one channel.

    ``delivered``/``failed``/``expired`` count them by final status (failed: error);
    ``spend`` sums their prices and ``failed_spend`` the prices of the failed and expired
    ones; ``latency_total`` sums the sent -> delivered seconds of the ``latency_count``
    delivered messages that have both times.
    """

    country: str | None
    operator: str | None
    channel: str
    messages: int
    delivered: int
    failed: int
    expired: int
    spend: float
    failed_spend: float
    latency_total: float
    latency_count: int


@dataclass(frozen=True, slots=True)
class Stuck:
    """Messages pending past their channel's threshold: ``counts`` per channel (every
    channel listed), ``items`` the oldest first, at most the limit asked."""

    counts: dict[str, int]
    items: list[MessageSummary]


@dataclass(frozen=True, slots=True)
class DeadLetters:
    """Dead letters not redriven: how many, and the oldest of them."""

    waiting: int
    oldest: list[DeadLetter]
