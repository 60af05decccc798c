"""Message detail: its events as a timeline (event and receipt times), its state and how it
was reached, its raw payloads."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from dashboard import loads, session
from dashboard.show import cell, seconds, when
from dashboard.story import headline, tell
from qlara import mask_phone, mask_phones

view = session.view()
st.title("Message detail")
# The input follows the view (a link may change it) and the view follows the input.
state = st.session_state
if "f_message" not in state or state.get("f_message_shown") != view.message:
    state["f_message"] = view.message or ""
typed = st.text_input("Message id", key="f_message").strip()
if typed != (view.message or ""):
    session.set_message(typed)
state["f_message_shown"] = typed or None
if not typed:
    st.info("Enter a message id, or open one from the Messages page.")
    st.stop()

message = loads.message_detail(typed)
if message is None:
    st.info(f"The ledger has no message {typed!r}.")
    st.stop()

st.markdown(f"### {headline(message, loads.now())}")
state_columns = st.columns(4)
state_columns[0].metric("Status", message.status or "none")
state_columns[1].metric("Final", "yes" if message.is_final else "not yet")
state_columns[2].metric("Sent → final", seconds(message.latency_seconds))
state_columns[3].metric("Events", f"{message.event_count} (+{message.duplicate_count} copies)")
st.write(
    f"Channel **{message.channel or 'none'}** · phone {mask_phone(message.phone) or 'none'} · "
    f"customer message id {message.customer_message_id or 'none'} · sent {when(message.sent_at)}"
    f" · final {when(message.final_at)} · read {when(message.read_at)}"
)
if message.error:
    st.write(f"Error: `{mask_phones(message.error)}`")

st.subheader("How it got there")
story = tell(message)
for sentence in story.sentences():
    st.markdown(f"- {sentence}")
if len(story.parts) > 1:
    st.subheader("Parts")
    st.caption("Final once every part is; delivered only when every part was.")
    st.dataframe(
        pd.DataFrame(
            {
                "part": [f"{p.part}/{p.total_parts}" for p in story.parts],
                "status": [p.status or "no report yet" for p in story.parts],
                "event time": [when(p.event.event_time) if p.event else "" for p in story.parts],
                "error": [mask_phones(p.event.error or "") if p.event else "" for p in story.parts],
            }
        ),
        hide_index=True,
    )

st.subheader("Timeline")
if any(e.time_from_receipt for e in message.events):
    st.caption(
        "(receipt): Qlara's timestamp was missing or implausible; the event is timed at its "
        "receipt, and its raw payload below keeps what Qlara sent."
    )
#: Where each status came from, in words.
FROM = {"webhook": "Qlara's webhook", "app": "your application", "poll": "polled from Qlara"}
if any(e.source == "poll" for e in message.events):
    st.caption(
        "polled from Qlara: the webhook never delivered this status; the reconciler asked "
        "Qlara's status API for it, and its time is the poll's, not the delivery's."
    )
st.dataframe(
    pd.DataFrame(
        {
            "from": [FROM.get(e.source, e.source) for e in message.events],
            "event time": [
                f"{when(e.event_time)} (receipt)" if e.time_from_receipt else when(e.event_time)
                for e in message.events
            ],
            "received": [when(e.received_at) for e in message.events],
            "status": [e.status for e in message.events],
            "code": [cell(e.status_code) for e in message.events],
            "part": [f"{e.part}/{e.total_parts}" for e in message.events],
            "copies": [e.duplicates for e in message.events],
            "error": [cell(mask_phones(e.error)) for e in message.events],
            "shape": [e.shape.name for e in message.events],
        }
    ),
    hide_index=True,
)

st.subheader("Raw payloads")
st.caption("As Qlara sent them, phone numbers masked.")
for number, record in enumerate(message.events, start=1):
    with st.expander(f"{number}. {record.status} at {when(record.event_time)}"):
        text = record.raw.decode("utf-8", errors="replace")
        try:
            st.json(mask_phones(json.loads(text)))
        except ValueError:
            st.code(mask_phones(text))
