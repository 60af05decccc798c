"""The metrics-only app (``qlara-sidecar metrics``) and the receiver without ``/metrics``: what
another process counted is served as it is, the state gauges of the backends configured are
added, the token is enforced, and nothing is written into the directory served."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from ledger import Ledger, Tally
from metrics import MULTIPROC_ENV, counts_owner, prepare_dir, tally_recorded
from receiver import MetricsConfig, ReceiverConfig, create_app, create_metrics_app
from tests.ledger.samples import event, receipt
from tests.metrics.scraping import scrape, unreachable_backends

METRICS_TOKEN = "metrics-app-scrape-token"

# What a worker process leaves behind: series initialised, a few receipts replayed, a dead
# letter (the events it recorded are counted in the ledger, under the directory's owner).
WORKER = """
import metrics
metrics.initialise("1.2.3")
for _ in range(5):
    metrics.RECEIPTS_REPLAYED.inc()
metrics.DEAD_LETTERS.labels("poison").inc()
"""


def counted_by_a_worker(directory: Path) -> Path:
    prepare_dir(directory)
    counts_owner(directory)  # as the worker role's launcher does
    env = {**os.environ, MULTIPROC_ENV: str(directory)}
    subprocess.run([sys.executable, "-c", WORKER], env=env, check=True)
    return directory


@pytest.fixture
def worker_dir(tmp_path: Path) -> Path:
    return counted_by_a_worker(tmp_path / "metrics" / "worker")


@pytest.fixture
def config(tmp_path: Path, worker_dir: Path) -> MetricsConfig:
    return MetricsConfig(
        metrics_dir=worker_dir, data_dir=tmp_path / "data", queue_name="qlara-events"
    )


@pytest.fixture
def client(config: MetricsConfig) -> Iterator[TestClient[Any]]:
    with TestClient(create_metrics_app(config)) as started:
        yield started


def test_it_serves_what_the_worker_counted_and_nothing_of_its_own(
    client: TestClient[Any], worker_dir: Path
) -> None:
    before = sorted(p.name for p in worker_dir.iterdir())

    found = scrape(client)

    assert found[("qlara_receipts_replayed_total", ())] == 5
    assert found[("qlara_dead_letters_total", (("reason", "poison"),))] == 1
    assert found[("qlara_dead_letters_total", (("reason", "undecodable"),))] == 0
    assert found[("qlara_build_info", (("version", "1.2.3"),))] == 1
    # No webhook request was counted anywhere: the series the worker initialised stay at 0
    requests = [v for (name, _), v in found.items() if name == "qlara_webhook_requests_total"]
    assert requests
    assert set(requests) == {0}
    assert found[("qlara_webhook_ack_seconds_count", ())] == 0
    # And the directory is as the worker left it
    assert sorted(p.name for p in worker_dir.iterdir()) == before


def test_without_backends_configured_no_state_gauge_is_reported(client: TestClient[Any]) -> None:
    found = scrape(client)

    names = {name for name, _ in found}
    assert not names & {
        "qlara_messages_pending",
        "qlara_queue_messages",
        "qlara_spool_events",
        "qlara_scrape_source_up",
    }


def test_the_spool_is_reported_once_this_host_has_one(
    client: TestClient[Any], config: MetricsConfig
) -> None:
    assert ("qlara_spool_events", ()) not in scrape(client)

    config.spool_dir.mkdir(parents=True)
    found = scrape(client)

    assert found[("qlara_spool_events", ())] == 0
    assert found[("qlara_scrape_source_up", (("source", "spool"),))] == 1


@pytest.mark.redis
def test_the_ledger_and_the_queue_are_read_when_configured(
    config: MetricsConfig, redis_url: str, namespace: str, sqlite_url: str, worker_dir: Path
) -> None:
    # Given events the directory's workers recorded, and others another host's recorded
    ledger = Ledger.connect(sqlite_url)
    try:
        ours = Tally(counts_owner(worker_dir), 1, tally_recorded)
        ledger.record_many([receipt(event("m-1", "sent", 0), event("m-2", "sent", 5))], tally=ours)
        theirs = Tally("another-host", 1, tally_recorded)
        ledger.record_many([receipt(event("m-3", "sent", 0))], tally=theirs)
    finally:
        ledger.close()
    configured = replace(config, redis_url=redis_url, database_url=sqlite_url, namespace=namespace)

    with TestClient(create_metrics_app(configured)) as client:
        found = scrape(client)

    assert found[("qlara_messages_pending", (("channel", "sms"),))] == 3
    # The counters kept in the ledger are the directory's owner's alone
    assert found[("qlara_events_total", (("channel", "sms"), ("status", "sent")))] == 2
    assert found[("qlara_events_total", (("channel", "rcs"), ("status", "sent")))] == 0
    assert found[("qlara_scrape_source_up", (("source", "counts"),))] == 1
    assert found[("qlara_queue_messages", (("queue", "work"),))] == 0
    assert found[("qlara_queue_messages", (("queue", "dead_letter"),))] == 0
    assert found[("qlara_scrape_source_up", (("source", "pending"),))] == 1
    assert found[("qlara_scrape_source_up", (("source", "work_queue"),))] == 1


def test_a_backend_that_is_down_leaves_its_samples_out(
    config: MetricsConfig, tmp_path: Path
) -> None:
    redis_url, database_url = unreachable_backends(tmp_path)
    broken = replace(config, redis_url=redis_url, database_url=database_url)

    with TestClient(create_metrics_app(broken)) as client:
        found = scrape(client)

    assert ("qlara_messages_pending", (("channel", "sms"),)) not in found
    assert found[("qlara_scrape_source_up", (("source", "pending"),))] == 0
    assert found[("qlara_scrape_source_up", (("source", "work_queue"),))] == 0
    assert found[("qlara_scrape_source_up", (("source", "counts"),))] == 0
    assert ("qlara_events_total", (("channel", "sms"), ("status", "sent"))) not in found
    assert found[("qlara_receipts_replayed_total", ())] == 5


def test_with_a_metrics_token_a_scrape_needs_it(config: MetricsConfig) -> None:
    guarded = replace(config, metrics_token=METRICS_TOKEN)
    with TestClient(create_metrics_app(guarded)) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
        found = scrape(client, Authorization=f"Bearer {METRICS_TOKEN}")
        assert client.get("/healthz").status_code == 200

    assert found[("qlara_build_info", (("version", "1.2.3"),))] == 1


def test_it_serves_health_and_metrics_only(client: TestClient[Any]) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 404
    assert client.get("/v1/stats/webhook").status_code == 404
    assert client.post("/webhook/anything", json={}).status_code == 404


def test_the_receiver_without_metrics_answers_404_there(
    tmp_path: Path, redis_url: str, namespace: str, sqlite_url: str
) -> None:
    config = ReceiverConfig(
        data_dir=tmp_path / "data",
        redis_url=redis_url,
        database_url=sqlite_url,
        webhook_token="receiver-webhook-token",
        read_token="receiver-read-token",
        queue_name="qlara-events",
        actor_name="record_receipt",
        namespace=namespace,
        serve_metrics=False,
    )
    with TestClient(create_app(config)) as client:
        assert client.get("/metrics").status_code == 404
        assert client.get("/healthz").status_code == 200
