"""`qlara-sidecar fake-qlara`, as a demo runs it: a process serving the fake API."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.sidecar_process import free_port, wait_for


@pytest.fixture
def fake_process(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    messages = tmp_path / "messages.json"
    messages.write_text('[{"messageId":"m-1","customerMessageId":"o-1","status":"DELIVERED"}]')
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("qlara-sidecar")),
            "fake-qlara",
            "--port",
            str(port),
            "--api-key",
            "demo-key-0123456789",
            "--limits",
            "100/s,3/m",
            "--messages-file",
            str(messages),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _up(base), timeout=30, what="the fake Qlara to answer")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def _up(base: str) -> bool:
    try:
        return httpx.get(f"{base}/_fake/log", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_the_fake_answers_with_its_key_and_limits(fake_process: str) -> None:
    key = {"X-Api-Key": "demo-key-0123456789"}
    status = f"{fake_process}/api/messages/status/o-1"
    assert httpx.get(status, timeout=5).status_code == 401
    answers = [httpx.get(status, headers=key, timeout=5) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]  # 3 a minute
    assert answers[0].json()["status"] == "DELIVERED"
    refused = answers[3]
    assert refused.json()["retryAfter"] >= 1
    assert refused.headers["x-ratelimit-remaining"] == "0"
    log = httpx.get(f"{fake_process}/_fake/log", timeout=5).json()
    assert [entry["status"] for entry in log] == [401, 200, 200, 200, 429]
