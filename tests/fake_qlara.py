"""A fake Qlara served over HTTP on loopback, in a thread of the test process: the
``serve_fake`` fixture (a plugin of tests/conftest.py, for every test directory)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn

from qlara_api.fake import FakeQlara, create_fake_app
from qlara_api.limits import Limits
from tests.e2e.sidecar_process import wait_for

API_KEY = "fake-qlara-key-0123456789"


@dataclass
class Served:
    fake: FakeQlara
    base_url: str

    @property
    def api(self) -> str:
        return f"{self.base_url}/api"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def serve_fake() -> Iterator[Callable[..., Served]]:
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def serve(limits: Limits | None = None) -> Served:
        fake = FakeQlara(api_key=API_KEY, limits=limits or Limits())
        port = _free_port()
        config = uvicorn.Config(
            create_fake_app(fake), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        wait_for(
            lambda: server.started or not thread.is_alive(),
            timeout=15,
            what="the fake Qlara to start",
        )
        if not server.started:
            pytest.fail("the fake Qlara did not start")
        httpx.get(f"http://127.0.0.1:{port}/_fake/log", timeout=5).raise_for_status()
        return Served(fake, f"http://127.0.0.1:{port}")

    yield serve
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)
