"""Headless Chromium driven over the DevTools protocol: open a page, wait until Streamlit
has finished running it, read what it shows, take a screenshot.

Chromium's ``--dump-dom`` and ``--screenshot`` do not wait for a Streamlit script, which
runs after the page has loaded, over a websocket; so the page is polled instead.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect

from tests.conftest import _free_port, missing_service
from tests.sidecar.support import environment_without_settings, wait_until

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--window-size=1400,1100",
)
#: True once the script has run: the app's view exists and Streamlit shows no run in progress.
_SETTLED = """(() => {
  const app = document.querySelector('[data-testid="stAppViewContainer"]');
  const running = document.querySelector('[data-testid="stStatusWidgetRunningIcon"]');
  const titled = document.querySelector('h1');
  return Boolean(app && titled && !running);
})()"""
_ERRORS = """(() => {
  const found = [];
  for (const e of document.querySelectorAll('[data-testid="stException"]'))
    found.push('exception: ' + e.innerText.slice(0, 300));
  for (const e of document.querySelectorAll('[data-testid="stAlert"]')) {
    if (e.querySelector('[data-testid="stAlertContentError"]'))
      found.push('error: ' + e.innerText.slice(0, 300));
  }
  return found;
})()"""


def chromium() -> str | None:
    """The Chromium binary on PATH, if any."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Tab:
    """One page target of a running Chromium."""

    def __init__(self, socket: ClientConnection) -> None:
        self._socket = socket
        self._ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and return its result (events in between are skipped)."""
        ident = next(self._ids)
        self._socket.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            answer = json.loads(self._socket.recv(timeout=60))
            if answer.get("id") == ident:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                result: dict[str, Any] = answer.get("result", {})
                return result

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page. A page that is navigating has
        no context to evaluate in until the next one exists (Chromium answers "Inspected
        target navigated or closed", as its first blank page can at start): asked again
        until it has one."""

        def attempt() -> tuple[Any] | None:
            try:
                result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
            except RuntimeError as exc:
                if "navigated or closed" in str(exc):
                    return None
                raise
            return (result["result"].get("value"),)

        (value,) = wait_until(attempt, f"a page to evaluate {expression!r} in", timeout=10)
        return value

    def open(self, url: str, timeout: float = 60.0) -> None:
        """Navigate to ``url`` and wait until Streamlit has run the page (and a little more,
        for charts to draw); fail the test after ``timeout`` s.

        The page before is marked first: a document with the mark is the old one, however
        long the new one takes to come, so its text is never read as the new page's.
        """
        self.evaluate("window.__qlaraPrevious = true")
        self.call("Page.navigate", url=url)
        settled_since: list[float] = []

        def settled_a_while() -> bool:
            if self.evaluate("window.__qlaraPrevious === true") or not self.evaluate(_SETTLED):
                settled_since.clear()
                return False
            settled_since[:] = settled_since or [time.monotonic()]
            return time.monotonic() - settled_since[0] > 1.5

        wait_until(settled_a_while, f"{url} to finish running", timeout=timeout)

    def errors(self) -> list[str]:
        """Streamlit's exception and error elements on the page, as text."""
        found: list[str] = self.evaluate(_ERRORS) or []
        return found

    def text(self) -> str:
        """The page's visible text."""
        return str(self.evaluate("document.body.innerText"))

    def viewport(self, width: int, height: int) -> None:
        """Show pages at exactly ``width`` x ``height`` CSS pixels from now on."""
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

    def screenshot(self, path: Path, *, whole_page: bool = True) -> None:
        """Save the whole page, or only what the viewport shows, as a PNG."""
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=whole_page)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data["data"]))


@contextmanager
def browser(binary: str, port: int) -> Iterator[Tab]:
    """A headless Chromium with its DevTools on ``port``, and its one tab."""
    # Chromium's helper processes may still write to the profile as it is removed.
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        process = subprocess.Popen(
            [binary, *FLAGS, f"--remote-debugging-port={port}", f"--user-data-dir={profile}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its helpers share its process group
        )
        try:
            url = _page_socket(port)
            with connect(url, max_size=None, open_timeout=10) as socket:
                tab = Tab(socket)
                tab.call("Page.enable")
                yield tab
        finally:
            stop(process, group=True)


def stop(process: subprocess.Popen[Any], *, group: bool = False) -> None:
    """SIGTERM, up to 10 s, then SIGKILL; with ``group``, then SIGKILL to what is left of
    the process group it leads."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if group:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def _page_socket(port: int) -> str:
    def page() -> str | None:
        targets = httpx.get(f"http://127.0.0.1:{port}/json", timeout=1).json()
        pages = [t for t in targets if t.get("type") == "page"]
        return str(pages[0]["webSocketDebuggerUrl"]) if pages else None

    return wait_until(page, "Chromium's DevTools to answer", timeout=30)


@contextmanager
def serve_explorer(
    data_dir: Path, log_path: Path, port: int | None = None, **settings: str
) -> Iterator[str]:
    """`qlara-sidecar dashboard` on ``data_dir`` with ``settings`` (as QLARA_SIDECAR_*
    variables, nothing else of this process's), on ``port`` (a free one unless given),
    logging to ``log_path``; its base URL once it answers. Stopped on leaving."""
    port = port or _free_port()
    base = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "sidecar", "dashboard"],
            env=environment_without_settings(
                data_dir=str(data_dir), dashboard_port=str(port), log_format="json", **settings
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(
                lambda: (
                    process.poll() is None
                    and httpx.get(f"{base}/_stcore/health", timeout=1).status_code == 200
                ),
                "the explorer to answer",
                timeout=60,
            )
            yield base
        finally:
            stop(process)


@contextmanager
def chromium_tab(width: int | None = None, height: int | None = None) -> Iterator[Tab]:
    """A tab of a fresh headless Chromium (Debian's ``chromium`` package), its viewport
    ``width`` x ``height`` when given. Skips, or fails in CI, without Chromium."""
    binary = chromium()
    if binary is None:
        missing_service("chromium is not installed (apt-get install chromium)")
        raise AssertionError("unreachable")
    with browser(binary, _free_port()) as opened:
        if width is not None and height is not None:
            opened.viewport(width, height)
        yield opened
