"""The window's messages by destination (:class:`dashboard.figures.Place`), summed per
country, operator or channel for the pages' tables."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Literal

import pandas as pd
import streamlit as st

if TYPE_CHECKING:  # the type of st.column_config's values, which Streamlit does not export
    from streamlit.elements.lib.column_types import ColumnConfig

from dashboard.figures import Place

#: How a message with no known country, or a range whose plan names no operator, is shown.
NO_COUNTRY = "(unknown)"
NO_OPERATOR = "(not in the plan)"
#: The note every operator column carries.
OPERATOR_NOTE = (
    "Operator: the one the number's range was first assigned to, from the numbering plan; "
    "a number ported since reaches another operator."
)

By = Literal["country", "operator", "channel"]
_KEYS: dict[By, Callable[[Place], tuple[str, ...]]] = {
    "country": lambda p: (p.country or NO_COUNTRY,),
    "operator": lambda p: (p.country or NO_COUNTRY, p.operator or NO_OPERATOR),
    "channel": lambda p: (p.channel,),
}
_NAMES: dict[By, list[str]] = {
    "country": ["country"],
    "operator": ["country", "operator"],
    "channel": ["channel"],
}
_SUMMED = (
    "messages",
    "delivered",
    "failed",
    "expired",
    "spend",
    "failed_spend",
    "latency_total",
    "latency_count",
)


def table(places: Iterable[Place], by: By) -> pd.DataFrame:
    """One row per country, (country, operator) or channel, most messages first.

    Columns: messages; delivered, failed (error) and expired messages; the failure share
    (failed and expired over final messages, ``None`` when none is final); the mean sent ->
    delivered seconds; spend, and the part of it spent on failed or expired messages."""
    sums: dict[tuple[str, ...], list[float]] = {}
    for place in places:
        row = sums.setdefault(_KEYS[by](place), [0.0] * len(_SUMMED))
        for i, name in enumerate(_SUMMED):
            row[i] += getattr(place, name)
    records = []
    for key, values in sums.items():
        v = dict(zip(_SUMMED, values, strict=True))
        final = v["delivered"] + v["failed"] + v["expired"]
        records.append(
            {
                **dict(zip(_NAMES[by], key, strict=True)),
                "messages": int(v["messages"]),
                "delivered": int(v["delivered"]),
                "failed": int(v["failed"]),
                "expired": int(v["expired"]),
                "failure share": (v["failed"] + v["expired"]) / final if final else None,
                "mean sent → delivered (s)": (
                    v["latency_total"] / v["latency_count"] if v["latency_count"] else None
                ),
                "spend": round(v["spend"], 6),
                "spent on failures": round(v["failed_spend"], 6),
            }
        )
    columns = [*_NAMES[by], "messages", "delivered", "failed", "expired", "failure share"]
    columns += ["mean sent → delivered (s)", "spend", "spent on failures"]
    frame = pd.DataFrame.from_records(records, columns=columns)
    return frame.sort_values(
        ["messages", *_NAMES[by]], ascending=[False] + [True] * len(_NAMES[by])
    ).reset_index(drop=True)


def column_config() -> dict[str, ColumnConfig]:
    """How the pages show :func:`table`'s figures: shares in percent, seconds to the tenth,
    prices as Qlara reports them (the account's currency)."""
    return {
        "failure share": st.column_config.NumberColumn(format="percent"),
        "mean sent → delivered (s)": st.column_config.NumberColumn(format="%.1f"),
        "spend": st.column_config.NumberColumn(format="%.4f"),
        "spent on failures": st.column_config.NumberColumn(format="%.4f"),
    }
