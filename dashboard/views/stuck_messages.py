"""Stuck messages: sent, and still without a final status past their channel's threshold,
oldest first."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import loads, session
from dashboard.config import current
from dashboard.show import cell, seconds, when
from qlara import mask_phone
from qlara.durations import format_duration

LIMIT = 200

config = current()
view = session.view()
now = loads.now()
st.title("Stuck messages")
st.caption(
    "Pending longer than "
    + ", ".join(f"{c} {format_duration(t)}" for c, t in config.stuck_after.items())
    + f" as of {when(now)} UTC (the window does not apply)."
)
stuck = loads.stuck_messages(now, config.stuck_after, view.channel, LIMIT)
columns = st.columns(len(stuck.counts))
for column, (channel, count) in zip(columns, stuck.counts.items(), strict=True):
    column.metric(f"Stuck {channel}", f"{count:,}")
if not stuck.items:
    st.info("No message is stuck.")
else:
    st.dataframe(
        pd.DataFrame(
            {
                "message id": [m.message_id for m in stuck.items],
                "channel": [cell(m.channel) for m in stuck.items],
                "phone": [cell(mask_phone(m.phone)) for m in stuck.items],
                "status": [m.status for m in stuck.items],
                "sent (UTC)": [cell(m.sent_at, when) for m in stuck.items],
                "pending for": [
                    seconds((now - m.sent_at).total_seconds()) if m.sent_at else ""
                    for m in stuck.items
                ],
            }
        ),
        hide_index=True,
    )
    if sum(stuck.counts.values()) > len(stuck.items):
        st.caption(f"The {LIMIT} oldest are listed.")
