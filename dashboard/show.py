"""How figures are written on the pages."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TypeVar

from dashboard.figures import RatePoint
from dashboard.view import View
from metrics.definitions import DELIVERY_OUTCOMES

T = TypeVar("T")


def percent(share: float | None) -> str:
    """``0.9512`` -> ``95.1%``; ``None`` -> ``-``."""
    return "-" if share is None else f"{share:.1%}"


def seconds(value: float | None) -> str:
    """A duration in seconds, in the largest unit that keeps it readable; ``None`` -> ``-``."""
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.1f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def delta(this: float | None, before: float | None, unit: str = "count") -> str | None:
    """The change from the previous window, for ``st.metric``: of a ``count``, a ``share``
    (in percentage points) or ``seconds`` (in the unit that keeps it readable, as
    :func:`seconds` writes durations: 165 -> 196 ms is "+31 ms"); ``None`` when either is
    unknown."""
    if this is None or before is None:
        return None
    change = this - before
    if unit == "share":
        return f"{change * 100:+.1f} pt vs previous window"
    if unit == "seconds":
        sign = "-" if change < 0 else "+"
        return f"{sign}{seconds(abs(change))} vs previous window"
    return f"{change:+,.0f} vs previous window"


def per_event_shares(points: Iterable[RatePoint]) -> str:
    """One line of the window's final events by status, as Prometheus and the alerts count
    them (every part of a multi-part SMS is an event of its own), for beside the per-message
    figures."""
    counts = dict.fromkeys(DELIVERY_OUTCOMES, 0)
    for point in points:
        if point.status in counts:
            counts[point.status] += point.events
    total = sum(counts.values())
    if not total:
        return "Per event, as the alerts count: no final event in this window."
    shares = ", ".join(f"{status} {percent(n / total)}" for status, n in counts.items())
    return (
        f"Per event, as the alerts count (each SMS part is one): {shares} of {total:,} final "
        "events."
    )


def cell(value: T | None, written: Callable[[T], str] = str) -> str:
    """A table cell: ``value`` as ``written`` writes it, and an empty cell for nothing
    (``None``), the one notation every table uses."""
    return "" if value is None else written(value)


def when(value: datetime | None) -> str:
    """A time as ``YYYY-MM-DD HH:MM:SS`` UTC; ``None`` -> ``-``."""
    return "-" if value is None else f"{value:%Y-%m-%d %H:%M:%S}"


def short_when(value: datetime) -> str:
    """A time as ``05 Dec 08:24:43`` (UTC), for tables that must fit the page."""
    return f"{value:%d %b %H:%M:%S}"


def span_caption(view: View, start: datetime, end: datetime) -> str:
    """What the page covers, in one line."""
    channel = view.channel or "every channel"
    return f"{when(start)} to {when(end)} UTC · {channel}"
