"""Failures: error classes and the most frequent raw error texts by channel, over time;
the expired share; where failures happen, by destination country and operator."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import loads, places, session
from dashboard.charts import ERROR_CLASS_COLOURS, stacked_bars
from dashboard.show import per_event_shares, percent, span_caption
from dashboard.view import bucket_size
from qlara import mask_phones

view = session.view()
now = loads.now()
start, end = view.span(now)
st.title("Failures")
st.caption(span_caption(view, start, end))

step = bucket_size(start, end, points=48)
found = loads.failures(start, end, view.channel, step)
failed = sum(found.by_class.values())
top = st.columns(2)
top[0].metric("Failed or expired messages", f"{failed:,}")
top[1].metric("Expired share (messages)", percent(found.expired_share))
st.caption(
    "Expired share: messages whose final status is expired, of the messages that reached a "
    "final status in the window (the Overview's expiry rate). "
    + per_event_shares(loads.event_rates(start, end, view.channel, bucket_size(start, end)))
)
if not failed:
    st.info("No message failed or expired in this window.")
    st.stop()

st.subheader("Error classes by channel")
classes = pd.DataFrame(
    [(channel, kind, count) for (channel, kind), count in found.by_class.items()],
    columns=["channel", "error class", "messages"],
)
st.dataframe(
    classes.pivot_table(index="error class", columns="channel", values="messages", fill_value=0),
)

st.subheader("Over time")
st.altair_chart(
    stacked_bars(
        pd.DataFrame(found.over_time, columns=["time", "error class", "messages"]),
        start=start,
        end=end,
        value="messages",
        category="error class",
        colours=ERROR_CLASS_COLOURS,
        time_title="failed (UTC)",
    ),
    width="stretch",
)

st.subheader("Most frequent error texts")
st.dataframe(
    pd.DataFrame(
        [(channel, mask_phones(text), n) for channel, text, n in found.top_errors],
        columns=["channel", "error text", "messages"],
    ),
    hide_index=True,
)

st.subheader("Where failures happen")
found_places = loads.places(start, end, view.channel)
st.caption(
    "Messages changed in the window by destination country, from the phone number "
    "(messages whose phone is not known are under (unknown)). Failure share: failed and "
    "expired messages of those that reached a final status. " + places.OPERATOR_NOTE
)
by_country = places.table(found_places, "country")
st.dataframe(
    by_country.sort_values(["failed", "expired"], ascending=False),
    hide_index=True,
    column_config=places.column_config(),
)
with st.expander("By mobile operator"):
    st.dataframe(
        places.table(found_places, "operator").sort_values(["failed", "expired"], ascending=False),
        hide_index=True,
        column_config=places.column_config(),
    )
