"""How the explorer draws: one fixed colour per status and per error class on every chart,
whatever the data holds; 24-hour UTC times on every time axis; and a time axis that spans
the window asked for, not the data's extent (an hour with events in its last ten minutes
looks like one)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import altair as alt
import pandas as pd

from metrics.error_classes import ERROR_CLASSES

#: One colour per status, the same on every page: delivered green, error red, expired amber,
#: sent (pending) grey, read blue, received (reached the network, handset unconfirmed) teal.
STATUS_COLOURS: dict[str, str] = {
    "delivered": "#2ca02c",
    "read": "#1f77b4",
    "received": "#17becf",
    "sent": "#7f7f7f",
    "error": "#d62728",
    "expired": "#ff9f1c",
}
#: A status nobody documented yet: neutral, never one of the colours above.
UNKNOWN_COLOUR = "#c7b9a5"

#: One colour per error class, by its place in the table (:data:`metrics.ERROR_CLASSES`).
_PALETTE = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac", "#86bcb6", "#d37295", "#fabfd2", "#8cd17d", "#b6992d", "#79706e",
)  # fmt: skip
ERROR_CLASS_COLOURS: dict[str, str] = dict(zip(ERROR_CLASSES, _PALETTE, strict=False))


def status_colour(status: str) -> str:
    """The colour of ``status`` (any case); :data:`UNKNOWN_COLOUR` for one not listed."""
    return STATUS_COLOURS.get(status.lower(), UNKNOWN_COLOUR)


def colour_scale(values: Iterable[str], colours: dict[str, str]) -> alt.Scale:
    """A colour scale that gives each of ``values`` its fixed colour (``colours``, else the
    neutral one), known values first in the table's order."""
    present = set(values)
    domain = [v for v in colours if v in present] + sorted(present - set(colours))
    return alt.Scale(domain=domain, range=[colours.get(v, UNKNOWN_COLOUR) for v in domain])


def time_axis(start: datetime, end: datetime, title: str) -> alt.X:
    """The x axis of a chart over ``[start, end)``: that whole span, labelled in 24-hour UTC
    (with the day when it spans more than one)."""
    label = "%H:%M" if end - start <= timedelta(days=1) else "%d %b %H:%M"
    return alt.X(
        "time:T",
        title=title,
        scale=alt.Scale(type="utc", domain=[_iso(start), _iso(end)]),
        axis=alt.Axis(format=label, labelOverlap=True),
    )


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def stacked_bars(
    frame: pd.DataFrame,
    *,
    start: datetime,
    end: datetime,
    value: str,
    category: str,
    colours: dict[str, str],
    time_title: str = "received (UTC)",
) -> alt.Chart:
    """Bars over time (column ``time``) of ``value``, stacked by ``category`` in its fixed
    colours, on an axis spanning ``[start, end)``."""
    tooltip: list[Any] = [
        alt.Tooltip("time:T", title="UTC", format="%Y-%m-%d %H:%M", formatType="utc"),
        alt.Tooltip(f"{category}:N"),
        alt.Tooltip(f"{value}:Q", format=",.1f"),
    ]
    chart: alt.Chart = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=time_axis(start, end, time_title),
            y=alt.Y(f"{value}:Q", title=value),
            color=alt.Color(f"{category}:N", scale=colour_scale(frame[category].unique(), colours)),
            tooltip=tooltip,
        )
    )
    return chart
