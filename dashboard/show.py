"""How figures are written on the pages."""

from __future__ import annotations

from datetime import datetime

from dashboard.view import View


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
    (in percentage points) or ``seconds``; ``None`` when either is unknown."""
    if this is None or before is None:
        return None
    change = this - before
    if unit == "share":
        return f"{change * 100:+.1f} pt vs previous window"
    if unit == "seconds":
        return f"{change:+.1f} s vs previous window"
    return f"{change:+,.0f} vs previous window"


def when(value: datetime | None) -> str:
    """A time as ``YYYY-MM-DD HH:MM:SS`` UTC; ``None`` -> ``-``."""
    return "-" if value is None else f"{value:%Y-%m-%d %H:%M:%S}"


def span_caption(view: View, start: datetime, end: datetime) -> str:
    """What the page covers, in one line."""
    channel = view.channel or "every channel"
    return f"{when(start)} to {when(end)} UTC · {channel}"
