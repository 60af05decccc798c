"""``GET /metrics`` on the receiver: the webhook's counts, what is waiting, the optional
token, and a scrape that still answers when a backend is down."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from ledger import Horizon, Ledger
from metrics.definitions import installed_version
from receiver import ReceiverConfig, create_app
from tests.ledger.samples import T0, event, receipt
from tests.metrics.conftest import Samples
from tests.metrics.scraping import scrape, unreachable_backends

TOKEN = "metrics-test-webhook-token"
READ_TOKEN = "metrics-test-read-token"
METRICS_TOKEN = "metrics-test-scrape-token"


@pytest.fixture
def config(tmp_path: Path, redis_url: str, namespace: str, sqlite_url: str) -> ReceiverConfig:
    Ledger.connect(sqlite_url).close()  # the workers own the schema; migrate as they would
    return ReceiverConfig(
        data_dir=tmp_path / "data",
        redis_url=redis_url,
        database_url=sqlite_url,
        webhook_token=TOKEN,
        read_token=READ_TOKEN,
        queue_name="qlara-events",
        actor_name="record_receipt",
        namespace=namespace,
        # generous: a busy machine must not send an enqueue to the spool instead
        redis_timeout=5.0,
        enqueue_deadline=10.0,
    )


@pytest.fixture
def client(config: ReceiverConfig) -> Iterator[TestClient[Any]]:
    with TestClient(create_app(config)) as started:
        yield started


def test_implausible_values_kept_are_counted_by_field(
    client: TestClient[Any], samples: Samples
) -> None:
    base = {"messageId": "m-1", "eventType": "DELIVERY", "statusCode": 3}
    body = [
        {**base, "numPart": 0, "totalParts": 2},  # no timestamp, and a part below 1
        {**base, "timestamp": "2025-03-01T10:00:00Z", "numPart": 3, "totalParts": 2},
        {**base, "timestamp": "2025-03-01T10:00:00Z"},
    ]

    assert client.post(f"/webhook/{TOKEN}", json=body).status_code == 200

    assert samples.delta("qlara_webhook_implausible_values_total", field="timestamp") == 1
    assert samples.delta("qlara_webhook_implausible_values_total", field="numPart") == 1
    assert samples.delta("qlara_webhook_implausible_values_total", field="totalParts") == 1


def test_webhook_requests_are_counted_by_outcome_and_timed(
    client: TestClient[Any], samples: Samples
) -> None:
    ok = {"messageId": "m-1", "status": "SENT", "timestamp": "2025-03-01T10:00:00Z"}
    assert client.post(f"/webhook/{TOKEN}", json=ok).status_code == 200
    assert client.post(f"/webhook/{TOKEN}", content=b"{nope").status_code == 400
    assert client.post("/webhook/wrong-token", json=ok).status_code == 401
    assert client.get(f"/webhook/{TOKEN}").status_code == 405

    assert samples.delta("qlara_webhook_requests_total", outcome="accepted") == 1
    assert samples.delta("qlara_webhook_requests_total", outcome="invalid") == 1
    assert samples.delta("qlara_webhook_requests_total", outcome="unauthorized") == 1
    assert samples.delta("qlara_webhook_requests_total", outcome="method_not_allowed") == 1
    assert samples.delta("qlara_webhook_ack_seconds_count") == 4
    found = scrape(client)
    assert found[("qlara_webhook_requests_total", (("outcome", "accepted"),))] >= 1


def test_pending_messages_and_the_work_queue_are_read_at_scrape_time(
    client: TestClient[Any], config: ReceiverConfig
) -> None:
    # Given two sms messages sent and not final, one whatsapp message delivered
    ledger = Ledger.connect(config.database_url, migrate=False)
    try:
        ledger.record(receipt(event("m-1", "sent", 0), event("m-2", "sent", 5)))
        ledger.record(
            receipt(event("m-3", "sent", 0, channel="whatsapp"), event("m-3", "delivered", 2))
        )
    finally:
        ledger.close()
    # And one request waiting on the queue (no worker runs here)
    ok = {"messageId": "m-9", "status": "SENT", "timestamp": "2025-03-01T10:00:00Z"}
    assert client.post(f"/webhook/{TOKEN}", json=ok).status_code == 200

    found = scrape(client)

    assert found[("qlara_messages_pending", (("channel", "sms"),))] == 2
    assert found[("qlara_messages_pending", (("channel", "whatsapp"),))] == 0
    assert found[("qlara_messages_pending_oldest_age_seconds", (("channel", "sms"),))] > 0
    assert found[("qlara_queue_messages", (("queue", "work"),))] == 1
    assert found[("qlara_queue_messages", (("queue", "dead_letter"),))] == 0
    assert found[("qlara_spool_events", ())] == 0


def test_a_message_past_its_channel_horizon_is_unresolved_not_pending(
    config: ReceiverConfig,
) -> None:
    # Given an ancient sms message never resolved, and one sent a minute ago
    ledger = Ledger.connect(config.database_url, migrate=False)
    a_minute_ago = (datetime.now(UTC) - T0).total_seconds() - 60
    try:
        ledger.record(receipt(event("ancient", "sent", 0), event("fresh", "sent", a_minute_ago)))
    finally:
        ledger.close()
    horizon = Horizon(by_channel={"sms": timedelta(hours=48)}, default=timedelta(hours=24))

    with TestClient(create_app(replace(config, expiry_horizon=horizon))) as client:
        found = scrape(client)

    # Then only the fresh one is pending (and the oldest pending age is its own)
    assert found[("qlara_messages_pending", (("channel", "sms"),))] == 1
    assert found[("qlara_messages_unresolved", (("channel", "sms"),))] == 1
    assert found[("qlara_messages_pending_oldest_age_seconds", (("channel", "sms"),))] < 3600


def test_a_scrape_answers_when_redis_and_the_database_are_down(
    config: ReceiverConfig, tmp_path: Path
) -> None:
    redis_url, database_url = unreachable_backends(tmp_path)
    broken = replace(config, redis_url=redis_url, database_url=database_url)
    with TestClient(create_app(broken)) as client:
        found = scrape(client)

    assert ("qlara_messages_pending", (("channel", "sms"),)) not in found
    assert ("qlara_queue_messages", (("queue", "work"),)) not in found
    assert found[("qlara_scrape_source_up", (("source", "pending"),))] == 0
    assert found[("qlara_scrape_source_up", (("source", "work_queue"),))] == 0
    assert found[("qlara_scrape_source_up", (("source", "spool"),))] == 1
    assert found[("qlara_webhook_requests_total", (("outcome", "accepted"),))] >= 0


def test_with_a_metrics_token_a_scrape_needs_it(config: ReceiverConfig) -> None:
    guarded = replace(config, metrics_token=METRICS_TOKEN)
    with TestClient(create_app(guarded)) as client:
        assert client.get("/metrics").status_code == 401
        wrong = {"Authorization": f"Bearer {READ_TOKEN}"}
        assert client.get("/metrics", headers=wrong).status_code == 401
        found = scrape(client, Authorization=f"Bearer {METRICS_TOKEN}")

    assert found[("qlara_build_info", (("version", installed_version()),))] == 1


def test_without_a_metrics_token_the_metrics_are_open(client: TestClient[Any]) -> None:
    assert client.get("/metrics").status_code == 200
