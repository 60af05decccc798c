"""Overview: the window's messages, delivery, failure and expiry rates, latency, and the
events per minute by status, beside the same figures for the window before; the window's
destinations and spend."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import loads, places, session
from dashboard.charts import STATUS_COLOURS, stacked_bars
from dashboard.queries import EXACT_LATENCIES
from dashboard.show import delta, per_event_shares, percent, seconds, span_caption
from dashboard.view import bucket_size

view = session.view()
now = loads.now()
start, end = view.span(now)
before_start, before_end = view.previous_span(now)
st.title("Overview")
st.caption(span_caption(view, start, end))

this, last = loads.compare_outcomes((start, end), (before_start, before_end), view.channel)

row = st.columns(6)
row[0].metric("Messages", f"{this.messages:,}", delta(this.messages, last.messages))
row[1].metric(
    "Delivery rate (messages)",
    percent(this.delivery_rate),
    delta(this.delivery_rate, last.delivery_rate, "share"),
)
row[2].metric(
    "Failure rate (messages)",
    percent(this.failure_rate),
    delta(this.failure_rate, last.failure_rate, "share"),
    delta_color="inverse",
)
row[3].metric(
    "Expiry rate (messages)",
    percent(this.expiry_rate),
    delta(this.expiry_rate, last.expiry_rate, "share"),
    delta_color="inverse",
)
approx = "" if this.latency_exact else "≈ "
row[4].metric(
    "Sent → delivered p50",
    approx + seconds(this.latency_p50),
    delta(this.latency_p50, last.latency_p50, "seconds"),
    delta_color="inverse",
)
row[5].metric(
    "Sent → delivered p95",
    approx + seconds(this.latency_p95),
    delta(this.latency_p95, last.latency_p95, "seconds"),
    delta_color="inverse",
)

step = bucket_size(start, end)
points = loads.event_rates(start, end, view.channel, step)
st.caption(
    "Rates per message: shares of the messages that reached a final status in the window. "
    + per_event_shares(points)
    + (
        ""
        if this.latency_exact
        else f" Latency percentiles marked ≈: over {EXACT_LATENCIES:,} deliveries they come "
        "from an hourly histogram, within 2.2 % of the exact value."
    )
)

st.subheader("Messages by status")
statuses = sorted(set(this.by_status) | set(last.by_status))
st.dataframe(
    pd.DataFrame(
        {
            "status": statuses,
            "this window": [this.by_status.get(s, 0) for s in statuses],
            "previous window": [last.by_status.get(s, 0) for s in statuses],
        }
    ),
    hide_index=True,
)

st.subheader("Events per minute by status")
if points:
    per_minute = step.total_seconds() / 60
    frame = pd.DataFrame(
        {
            "time": [p.at for p in points],
            "status": [p.status for p in points],
            "events per minute": [p.events / per_minute for p in points],
        }
    )
    st.altair_chart(
        stacked_bars(
            frame,
            start=start,
            end=end,
            value="events per minute",
            category="status",
            colours=STATUS_COLOURS,
        ),
        width="stretch",
    )
else:
    st.info("No event was received in this window.")

st.subheader("Destinations and spend")
found_places = loads.places(start, end, view.channel)
spend = sum(p.spend for p in found_places)
failed_spend = sum(p.failed_spend for p in found_places)
money = st.columns(3)
money[0].metric("Spend", f"{spend:,.4f}")
money[1].metric("Spent on failed or expired messages", f"{failed_spend:,.4f}")
money[2].metric("Of the spend", percent(failed_spend / spend if spend else None))
st.caption(
    "Spend: the prices Qlara reported for the window's messages (the SMS Universal callback "
    "prices each part), in the account's currency. " + places.OPERATOR_NOTE
)
left, right = st.columns(2)
left.dataframe(
    places.table(found_places, "country"), hide_index=True, column_config=places.column_config()
)
right.dataframe(
    places.table(found_places, "channel"), hide_index=True, column_config=places.column_config()
)
