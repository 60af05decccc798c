"""Webhook health: each channel's last event and its age, events per minute with the gaps
longer than the threshold marked, rejections, acknowledgement time, spool and queue
backlog, and the dead letters, which an operator may redrive."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st
import structlog

from dashboard import loads, session
from dashboard.charts import STATUS_COLOURS, time_axis
from dashboard.config import current
from dashboard.scrape import scrape
from dashboard.show import seconds, span_caption, when
from dashboard.view import bucket_size
from qlara.durations import format_duration

log = structlog.get_logger(__name__)

config = current()
view = session.view()
now = loads.now()
start, end = view.span(now)
st.title("Webhook health")
st.caption(span_caption(view, start, end))

st.subheader("Last event per channel")
latest = loads.last_events(now)
if latest:
    columns = st.columns(len(latest))
    for column, item in zip(columns, latest, strict=True):
        column.metric(item.channel, f"{seconds(item.age_seconds)} ago")
        column.caption(f"at {when(item.at)} UTC")
else:
    st.info("No event has been received yet.")

st.subheader("Events per minute")
threshold = config.gap_threshold
step = bucket_size(start, end)
points = loads.event_rates(start, end, view.channel, step)
silences = loads.gaps(start, end, view.channel, threshold)
per_minute = step.total_seconds() / 60
totals: dict[object, float] = {}
for point in points:
    totals[point.at] = totals.get(point.at, 0) + point.events / per_minute
rates = pd.DataFrame({"time": list(totals), "events per minute": list(totals.values())})
chart = (
    alt.Chart(rates)
    .mark_bar(color=STATUS_COLOURS["sent"])
    .encode(x=time_axis(start, end, "received (UTC)"), y="events per minute:Q")
)
if silences:
    spans = pd.DataFrame({"time": [g.start for g in silences], "to": [g.end for g in silences]})
    marks = (
        alt.Chart(spans)
        .mark_rect(color=STATUS_COLOURS["error"], opacity=0.25)
        .encode(x=time_axis(start, end, "received (UTC)"), x2="to:T")
    )
    chart = marks + chart
st.altair_chart(chart, width="stretch")
if silences:
    st.warning(
        f"{len(silences)} silence(s) longer than {format_duration(threshold)}: "
        + "; ".join(f"{when(g.start)} to {when(g.end)} ({seconds(g.seconds)})" for g in silences)
    )
else:
    st.caption(f"No silence longer than {format_duration(threshold)} in this window.")

filled = loads.filled_by_polling(start, end, view.channel)
st.metric(
    "Filled by polling",
    f"{filled:,}",
    help="Final statuses the webhook never delivered, found by asking Qlara's status API "
    "(the reconciler) in this window. Many of them: events are being lost upstream.",
)
if filled:
    st.warning(
        f"{filled:,} final status(es) in this window never came by the webhook: the reconciler "
        "polled them from Qlara. Events are being lost between Qlara and the sidecar."
    )

st.subheader("Intake")
if config.metrics_url is None:
    st.info("The sidecar's metrics address is not configured: intake figures are not shown.")
else:
    try:
        intake = scrape(config.metrics_url, config.metrics_token, verify=config.metrics_verify)
    except Exception as exc:  # any failure to read is shown, not raised: the page stays useful
        log.info("metrics not readable", url=config.metrics_url, error=type(exc).__name__)
        st.info(f"The sidecar's metrics at {config.metrics_url} could not be read now.")
    else:
        figures = st.columns(4)
        figures[0].metric("Ack time p50", seconds(intake.ack_p50))
        figures[1].metric("Ack time p99", seconds(intake.ack_p99))
        figures[2].metric(
            "Spooled events", "-" if intake.spool_events is None else f"{intake.spool_events:,.0f}"
        )
        figures[3].metric("Queue backlog", f"{intake.queues.get('work', 0):,.0f}")
        rejected = intake.rejected
        if rejected:
            st.dataframe(
                pd.DataFrame({"reason": list(rejected), "requests": list(rejected.values())}),
                hide_index=True,
            )
        else:
            st.caption("No request has been rejected since the sidecar started.")

st.subheader("Dead letters")
letters = loads.dead_letters(20)
st.metric("Waiting", f"{letters.waiting:,}")
if letters.oldest:
    st.dataframe(
        pd.DataFrame(
            {
                "id": [d.id for d in letters.oldest],
                "receipt": [d.receipt_id for d in letters.oldest],
                "failed": [when(d.failed_at) for d in letters.oldest],
                "attempts": [d.attempts for d in letters.oldest],
                "reason": [d.reason for d in letters.oldest],
            }
        ),
        hide_index=True,
    )
    if config.redrive is not None:
        confirm = st.checkbox(
            f"The cause is fixed: send the {letters.waiting:,} waiting dead letters back"
        )
        if st.button("Redrive", disabled=not confirm):
            log.warning("dead letters redrive asked", user=session.user(), waiting=letters.waiting)
            try:
                redriven, remaining = config.redrive(letters.waiting)
            except Exception as exc:  # the operator is told; the page stays up
                log.error("dead letters redrive failed", error=str(exc))
                st.error(f"The redrive failed: {exc}")
            else:
                st.success(f"Redriven: {redriven}. Still waiting: {remaining}.")
