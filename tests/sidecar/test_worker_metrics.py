"""A worker host (or container) serves what its processes count, with no other process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from ledger import Ledger
from tests.conftest import _free_port
from tests.dashboard.browser import stop
from tests.e2e.sidecar_process import wait_for
from tests.sidecar.support import environment_without_settings
from tests.workers.support import make_receipt
from workers import WorkerConfig, build_broker, enqueue_receipt


def _delivered(scrape: str) -> float:
    for line in scrape.splitlines():
        if line.startswith('qlara_events_total{channel="sms",status="delivered"}'):
            return float(line.split()[-1])
    return 0.0


def test_worker_with_a_metrics_port_serves_what_its_processes_count(
    tmp_path: Path, redis_url: str, namespace: str
) -> None:
    database = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    Ledger.connect(database).close()
    port = _free_port()
    with (tmp_path / "worker.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "sidecar", "worker", "--processes", "2"],
            env=environment_without_settings(
                data_dir=str(tmp_path / "data"),
                redis_url=redis_url,
                database_url=database,
                namespace=namespace,
                metrics_port=str(port),
                log_format="json",
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}/metrics"

        def scrape() -> str | None:
            try:
                return httpx.get(url, timeout=2).text
            except httpx.HTTPError:
                return None

        before = _delivered(wait_for(scrape, timeout=60, what="the worker's metrics listener"))
        # When receipts reach the queue its processes take from
        broker = build_broker(
            WorkerConfig(redis_url=redis_url, database_url=database, namespace=namespace)
        )
        for n in range(4):
            enqueue_receipt(broker, make_receipt(f"r-{n}", f"m-{n}"))

        # Then the listener beside them shows every one counted, by whichever process
        wait_for(
            lambda: _delivered(scrape() or "") == before + 4,
            timeout=60,
            what="four delivered events in the worker host's metrics",
        )
    finally:
        stop(process)
    assert process.returncode == 0, (tmp_path / "worker.log").read_text()[-2000:]
