"""Messages: search and filter, a page at a time; phones masked unless one row's is
revealed; the whole filtered set as CSV."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import loads, session
from dashboard.export import EXPORT_LIMIT, messages_csv
from dashboard.show import seconds, span_caption, when
from metrics.error_classes import ERROR_CLASSES
from qlara import mask_phone, mask_phones

PAGE_SIZE = 50
_CURSORS = "qlara_message_cursors"

view = session.view()
now = loads.now()
start, end = view.span(now)
st.title("Messages")
st.caption(span_caption(view, start, end) + (f" · search {view.search!r}" if view.search else ""))

error_class = st.selectbox("Error class", ["any", *ERROR_CLASSES], key="f_error_class")
chosen_class = None if error_class == "any" else error_class

# Cursors of the pages seen, for "previous"; reset whenever the filters change.
filters = (view.channel, view.status, chosen_class, view.search, start if view.start else None)
state = st.session_state
if state.get(_CURSORS, (None, [None]))[0] != filters:
    state[_CURSORS] = (filters, [None])
cursors: list[str | None] = state[_CURSORS][1]

found = loads.find_messages(
    start, end, view.channel, view.status, chosen_class, view.search, PAGE_SIZE, cursors[-1]
)
if not found.items:
    st.info("No message matches these filters in this window.")
else:
    st.dataframe(
        pd.DataFrame(
            {
                "message id": [m.message_id for m in found.items],
                "customer message id": [m.customer_message_id for m in found.items],
                "channel": [m.channel for m in found.items],
                "phone": [mask_phone(m.phone) for m in found.items],
                "status": [m.status for m in found.items],
                "sent": [when(m.sent_at) for m in found.items],
                "final": [when(m.final_at) for m in found.items],
                "sent → final": [seconds(m.latency_seconds) for m in found.items],
                "error": [mask_phones(m.error) for m in found.items],
                "updated": [when(m.updated_at) for m in found.items],
            }
        ),
        hide_index=True,
    )
    left, middle, right = st.columns(3)
    if left.button("Previous page", disabled=len(cursors) == 1):
        cursors.pop()
        st.rerun()
    middle.caption(f"Page {len(cursors)}")
    if right.button("Next page", disabled=found.next_cursor is None):
        cursors.append(found.next_cursor)
        st.rerun()

    ids = [m.message_id for m in found.items]
    chosen = st.selectbox("Show the details of", ["(none)", *ids], key="f_reveal")
    if chosen != "(none)":
        message = next(m for m in found.items if m.message_id == chosen)
        st.write(f"Phone of {chosen}: **{message.phone or 'none'}**")
        st.page_link(
            "views/message_detail.py",
            label=f"Open {chosen}",
            query_params={**view.to_query(), "message": chosen},
        )

st.subheader("Export")
if st.button(f"Prepare a CSV of every matching message (at most {EXPORT_LIMIT:,})"):
    rows = loads.all_messages(
        start, end, view.channel, view.status, chosen_class, view.search, EXPORT_LIMIT
    )
    st.download_button(
        f"Download {len(rows):,} messages (CSV, phones masked)",
        messages_csv(rows),
        file_name="messages.csv",
        mime="text/csv",
    )
