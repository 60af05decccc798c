"""The Qlara delivery explorer: Streamlit's entry script (``qlara-sidecar dashboard``).

Each page's URL path is a contract (alert rules link to them): ``overview``, ``messages``,
``message_detail``, ``webhook_health``, ``failures``, ``stuck_messages``; the root URL
opens the overview.
"""

from __future__ import annotations

import streamlit as st

from dashboard import session
from dashboard.config import NotConfigured, current

st.set_page_config(page_title="Qlara explorer", layout="wide")

try:
    config = current()
except NotConfigured as exc:
    st.error(f"This explorer has no configuration: {exc}.")
    st.stop()

if not session.signed_in(config):
    st.stop()

OVERVIEW = st.Page("views/overview.py", title="Overview", url_path="overview")


def _root() -> None:
    """The root URL shows the overview at its own address, with the same parameters
    (Streamlit serves a default page at the root only, not at its URL path)."""
    st.switch_page(OVERVIEW, query_params=st.query_params.to_dict())


ROOT = st.Page(_root, title="Qlara explorer", url_path="root", default=True, visibility="hidden")
PAGES = [
    ROOT,
    OVERVIEW,
    st.Page("views/messages.py", title="Messages", url_path="messages"),
    st.Page("views/message_detail.py", title="Message detail", url_path="message_detail"),
    st.Page("views/webhook_health.py", title="Webhook health", url_path="webhook_health"),
    st.Page("views/failures.py", title="Failures", url_path="failures"),
    st.Page("views/stuck_messages.py", title="Stuck messages", url_path="stuck_messages"),
]
navigation = st.navigation(PAGES)
# The root page only moves on to the overview: what the link got wrong is said there.
session.current_view(show_problems=navigation.url_path != ROOT.url_path)
navigation.run()
