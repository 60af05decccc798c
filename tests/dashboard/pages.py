"""Opening the explorer's pages in Streamlit's AppTest, on a configured ledger."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboard import APP_PATH, DashboardConfig, configure
from tests.dashboard.seed import NOW, THRESHOLDS

#: Every page's file, by its URL path.
PAGES = {
    "overview": "views/overview.py",
    "messages": "views/messages.py",
    "message_detail": "views/message_detail.py",
    "webhook_health": "views/webhook_health.py",
    "failures": "views/failures.py",
    "stuck_messages": "views/stuck_messages.py",
}


def configure_for(database_url: str, **changes: object) -> DashboardConfig:
    """Configure this process's explorer on ``database_url``, its clock stopped at NOW."""
    config = DashboardConfig(
        database_url=database_url,
        stuck_after=THRESHOLDS,
        clock=lambda: NOW,
        **changes,  # type: ignore[arg-type]
    )
    configure(config)
    st.cache_data.clear()
    st.cache_resource.clear()
    return config


def open_page(page: str, query: Mapping[str, str] | None = None) -> AppTest:
    """Run the app with ``query`` as the URL's parameters, then switch to ``page``."""
    app = AppTest.from_file(str(APP_PATH), default_timeout=60)
    app.query_params.update(query or {})
    app.run()
    if page != "overview":
        app.switch_page(PAGES[page]).run()
    return app


def metrics(app: AppTest) -> dict[str, str]:
    """Every ``st.metric`` shown, label -> value."""
    return {m.label: m.value for m in app.metric}


def texts(app: AppTest) -> str:
    """Every markdown, caption, info and warning text, joined, to search in."""
    parts = [e.value for e in (*app.markdown, *app.caption, *app.info, *app.warning)]
    return "\n".join(str(p) for p in parts)


def charts(app: AppTest) -> list[dict[str, Any]]:
    """The Vega-Lite spec of every chart shown, layers flattened, in page order."""
    found: list[dict[str, Any]] = []
    for element in app.get("vega_lite_chart"):
        spec = json.loads(element.proto.spec)
        found.extend(spec.get("layer", [spec]))
    return found


def frame(app: AppTest, *columns: str) -> Any:
    """The first table shown that has every one of ``columns``."""
    for shown in app.dataframe:
        if all(column in shown.value.columns for column in columns):
            return shown.value
    raise AssertionError(f"no table with columns {columns}")
