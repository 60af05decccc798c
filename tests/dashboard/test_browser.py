"""The explorer as a browser sees it: `qlara-sidecar dashboard` on a loopback port, every
page opened in headless Chromium, none showing an exception or an error; a screenshot of
each is kept under tests/artifacts/dashboard/ (CI keeps them as artefacts)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ledger import Ledger, default_sqlite_url
from ledger.engine import build_engine
from tests.dashboard.browser import Tab, chromium_tab, serve_explorer
from tests.dashboard.seed import delivered, failed, record, seed
from tests.ledger.samples import event

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts" / "dashboard"

#: Each page's URL path (the contract alert rules link to), with a view worth seeing.
PAGES = {
    "overview": "window=1h",
    "messages": "window=1h&search=4567",
    "message_detail": "message=recent-1",
    "webhook_health": "window=6h&channel=sms",
    "failures": "window=1h",
    "stuck_messages": "",
}
TITLES = {
    "overview": "Overview",
    "messages": "Messages",
    "message_detail": "Message detail",
    "webhook_health": "Webhook health",
    "failures": "Failures",
    "stuck_messages": "Stuck messages",
}


def _seed_recent(url: str) -> None:
    """The seeded story (2025) plus a few messages of the last half hour."""
    Ledger.connect(url).close()
    engine = build_engine(url)
    try:
        seed(engine)
        now = datetime.now(UTC)
        sent = (now - timedelta(minutes=20) - datetime(2025, 3, 1, 9, tzinfo=UTC)).total_seconds()
        when = now - timedelta(minutes=19)
        record(engine, when, *delivered("recent-1", "sms", sent, 12, phone="+393901234567"))
        record(engine, when, *failed("recent-2", "rcs", sent, 4, "error", "Blocked by carrier"))
        record(engine, when, event("recent-3", "sent", sent, channel="whatsapp"))
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def explorer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`qlara-sidecar dashboard` on a seeded data directory; its base URL (one for the
    module: starting Streamlit takes seconds)."""
    tmp_path = tmp_path_factory.mktemp("explorer")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    _seed_recent(default_sqlite_url(data_dir))
    with serve_explorer(data_dir, tmp_path / "dashboard.log") as base:
        yield base


@pytest.fixture(scope="module")
def tab() -> Iterator[Tab]:
    """A headless Chromium tab, one for the module."""
    with chromium_tab() as opened:
        yield opened


def test_every_page_renders_without_an_error_element(explorer: str, tab: Tab) -> None:
    shown: dict[str, list[str]] = {}
    for page, query in PAGES.items():
        tab.open(f"{explorer}/{page}?{query}")
        tab.screenshot(ARTIFACTS / f"{page}.png")
        shown[page] = tab.errors()
        assert TITLES[page] in tab.text()
        assert tab.evaluate("location.pathname") == f"/{page}"

    assert shown == {page: [] for page in PAGES}


def test_the_root_url_opens_the_overview_with_the_link_s_parameters(
    explorer: str, tab: Tab
) -> None:
    tab.open(f"{explorer}/?channel=sms&window=6h")

    assert tab.evaluate("location.pathname") == "/overview"
    assert "channel=sms" in tab.evaluate("location.search")
    assert tab.errors() == []


def test_the_detail_page_shows_the_phone_masked(explorer: str, tab: Tab) -> None:
    tab.open(f"{explorer}/message_detail?message=recent-1")

    text = tab.text()
    assert "+39******4567" in text
    assert "+393901234567" not in text
