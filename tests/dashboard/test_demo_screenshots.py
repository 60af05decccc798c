"""Every page of the explorer after a minute of `qlara-sidecar demo`, as a support person
or an SRE first sees it: headless Chromium at 1400x1000, no error shown, the numbers
moving; a screenshot of each under tests/artifacts/demo/ (CI keeps them as artefacts)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sidecar.simulate import DEMO_REPORT_EVERY_S
from tests.dashboard.browser import Tab, chromium_tab, stop
from tests.e2e.sidecar_process import Sidecar, free_port, sidecar_env, wait_for

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts" / "demo"
#: Each page, with what its first look should show.
PAGES = {
    "overview": "Overview",
    "messages": "Messages",
    "webhook_health": "Webhook health",
    "failures": "Failures",
    "stuck_messages": "Stuck messages",
}
#: Report lines of the demo before the pages are looked at: its first minute.
DEMO_REPORTS = round(60 / DEMO_REPORT_EVERY_S)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sidecar]:
    """`qlara-sidecar demo`, its explorer on a free port, after a minute of traffic."""
    tmp_path = tmp_path_factory.mktemp("demo")
    data_dir, port = tmp_path / "data", free_port()
    env = sidecar_env(data_dir, port)
    env["QLARA_SIDECAR_DASHBOARD_PORT"] = str(free_port())
    env["QLARA_SIDECAR_RECONCILE_AFTER"] = "sms=5s,rcs=5s,whatsapp=5s,other=5s"
    sidecar = Sidecar(data_dir=data_dir, env=env, port=port, log_path=tmp_path / "demo.log")
    with sidecar.log_path.open("wb") as log:
        sidecar.process = subprocess.Popen(
            [str(Path(sys.executable).with_name("qlara-sidecar")), "demo"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        wait_for(
            lambda: sidecar.read("/v1/stats/webhook")["eventsTotal"] > 0,
            timeout=180,
            what="the demo's first recorded events",
        )
        # A minute of traffic, as a new user would give it before looking, as the demo's own
        # report lines count it
        wait_for(
            lambda: sidecar.log().count("demo: posted") >= DEMO_REPORTS,
            timeout=300,
            what=f"the demo's {DEMO_REPORTS} report lines",
        )
        yield sidecar
    finally:
        stop(sidecar.process)


@pytest.fixture(scope="module")
def tab() -> Iterator[Tab]:
    with chromium_tab(1400, 1000) as opened:
        yield opened


def test_every_page_after_a_demo_minute_shows_its_numbers_without_an_error(
    demo: Sidecar, tab: Tab
) -> None:
    explorer = f"http://127.0.0.1:{demo.env['QLARA_SIDECAR_DASHBOARD_PORT']}"
    shutil.rmtree(ARTIFACTS, ignore_errors=True)  # only this run's screenshots
    errors: dict[str, list[str]] = {}
    for page, title in PAGES.items():
        tab.open(f"{explorer}/{page}?window=15m")
        tab.screenshot(ARTIFACTS / f"{page}.png", whole_page=False)
        errors[page] = tab.errors()
        text = tab.text()
        assert title in text, page
        if page == "overview":
            # the minute's messages are counted: a number above 0 under "Messages"
            found = re.search(r"Messages\s+([\d,]+)", text)
            assert found is not None, text[:500]
            assert int(found.group(1).replace(",", "")) > 0
        if page == "messages":
            assert re.search(r"[1-9][\d,]* messages? match", text), text[:500]
    # And one message's detail, the support person's question, tells its story
    [newest] = demo.read("/v1/messages", limit=1)["items"]
    tab.open(f"{explorer}/message_detail?message={newest['messageId']}")
    tab.screenshot(ARTIFACTS / "message_detail.png", whole_page=False)
    errors["message_detail"] = tab.errors()
    # a one-sentence headline: "Delivered to +39******4567 at 10:00:04 UTC, ..."
    assert re.search(
        r"(Delivered|Not delivered|Expired|Sent|Last heard of)\b[^\n]* UTC", tab.text()
    ), tab.text()[:800]
    assert all(not found for found in errors.values()), errors
    assert {p.name for p in ARTIFACTS.glob("*.png")} == {
        f"{p}.png" for p in [*PAGES, "message_detail"]
    }
