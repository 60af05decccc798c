"""A fake Qlara served over HTTP on loopback, in a thread of the test process: the
``serve_fake`` fixture (a plugin of tests/conftest.py, for every test directory)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from qlara_api.fake import FakeQlara, FakeServer
from qlara_api.limits import Limits

API_KEY = "fake-qlara-key-0123456789"


@dataclass
class Served:
    fake: FakeQlara
    base_url: str

    @property
    def api(self) -> str:
        return f"{self.base_url}/api"


@pytest.fixture
def serve_fake() -> Iterator[Callable[..., Served]]:
    servers: list[FakeServer] = []

    def serve(limits: Limits | None = None) -> Served:
        server = FakeServer(FakeQlara(api_key=API_KEY, limits=limits or Limits()))
        servers.append(server)
        try:
            server.start()
        except RuntimeError as exc:
            pytest.fail(str(exc))
        httpx.get(f"{server.base_url}/_fake/log", timeout=5).raise_for_status()
        return Served(server.fake, server.base_url)

    yield serve
    for server in servers:
        server.stop()
