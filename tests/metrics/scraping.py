"""Reading a scrape in tests: every sample by name and labels, and backends that do not answer."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families

Found = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: TestClient[Any], **headers: str) -> Found:
    """``GET /metrics`` (must answer 200 in the text format), as {(name, labels): value}."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def unreachable_backends(tmp_path: Path) -> tuple[str, str]:
    """A Redis URL on a port nothing listens on, and the URL of an SQLite ledger that cannot
    be opened."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"redis://127.0.0.1:{sock.getsockname()[1]}/0"
    return closed, f"sqlite:///{tmp_path / 'missing' / 'ledger.sqlite3'}"
