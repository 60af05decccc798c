"""Messages: search and filter, a page at a time; phones masked unless one row's is
revealed; the whole filtered set as CSV."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import loads, session
from dashboard.export import EXPORT_LIMIT, messages_csv
from dashboard.show import cell, seconds, short_when, span_caption
from metrics.error_classes import ERROR_CLASSES
from qlara import mask_phone, mask_phones

PAGE_SIZE = 50
#: The orders offered (every column of the list), by :data:`dashboard.queries.SORTS` key.
SORT_LABELS = {
    "updated": "updated",
    "sent": "sent",
    "final": "final",
    "latency": "sent → final",
    "status": "status",
    "channel": "channel",
    "message_id": "message id",
    "customer_message_id": "customer message id",
    "phone": "phone",
    "error": "error",
}
_CURSORS = "qlara_message_cursors"

view = session.view()
now = loads.now()
start, end = view.span(now)
st.title("Messages")
if view.search:
    st.caption(
        f"Searching the whole ledger for {view.search!r} (message id, customer message id, or "
        "4+ digits of the phone): the window does not narrow a search."
    )
else:
    st.caption(span_caption(view, start, end))

error_class = st.selectbox("Error class", ["any", *ERROR_CLASSES], key="f_error_class")
chosen_class = None if error_class == "any" else error_class
by, order = st.columns([3, 2])
sort = by.selectbox("Sort by", list(SORT_LABELS), format_func=SORT_LABELS.__getitem__, key="f_sort")
descending = order.radio("Order", ["descending", "ascending"], key="f_order", horizontal=True) == (
    "descending"
)

# Cursors of the pages seen, for "previous"; reset whenever the filters or the order change.
filters = (
    view.channel,
    view.status,
    chosen_class,
    view.search,
    start if view.start else None,
    sort,
    descending,
)
state = st.session_state
if state.get(_CURSORS, (None, [None]))[0] != filters:
    state[_CURSORS] = (filters, [None])
cursors: list[str | None] = state[_CURSORS][1]

# What every read of the list filters by, in the loads' argument order
matches = (start, end, view.channel, view.status, chosen_class, view.search)
found = loads.find_messages(*matches, PAGE_SIZE, cursors[-1], sort, descending)
matching = loads.count_messages(*matches)
if not found.items:
    where = "in the ledger" if view.search else "in this window"
    st.info(f"No message matches these filters {where}.")
else:
    shown_from = (len(cursors) - 1) * PAGE_SIZE + 1
    st.markdown(
        f"**{matching:,}** message{'s' if matching != 1 else ''} match · showing "
        f"{shown_from:,}-{shown_from + len(found.items) - 1:,}, by "
        f"{SORT_LABELS[sort]}, {'descending' if descending else 'ascending'} "
        "(empty values last)"
    )
    # One notation for nothing: an empty cell. The columns a support person reads fit the
    # page; the final and update times are on each message's page and in the CSV.
    st.dataframe(
        pd.DataFrame(
            {
                "message id": [m.message_id for m in found.items],
                "customer message id": [cell(m.customer_message_id) for m in found.items],
                "channel": [cell(m.channel) for m in found.items],
                "phone": [cell(mask_phone(m.phone)) for m in found.items],
                "status": [cell(m.status) for m in found.items],
                "sent (UTC)": [cell(m.sent_at, short_when) for m in found.items],
                "sent → final": [cell(m.latency_seconds, seconds) for m in found.items],
                "error": [cell(mask_phones(m.error)) for m in found.items],
            }
        ),
        hide_index=True,
        width="stretch",
        column_config={
            "channel": st.column_config.TextColumn(width="small"),
            "status": st.column_config.TextColumn(width="small"),
            "sent → final": st.column_config.TextColumn(width="small"),
        },
    )
    st.caption(
        "Final and update times: on each message's page (Show the details of, below) and in "
        "the CSV export."
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
    rows = loads.all_messages(*matches, EXPORT_LIMIT, sort, descending)
    st.download_button(
        f"Download {len(rows):,} messages (CSV, phones masked)",
        messages_csv(rows),
        file_name="messages.csv",
        mime="text/csv",
    )
