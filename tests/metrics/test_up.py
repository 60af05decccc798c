"""`qlara-sidecar up` end to end: what ``GET /metrics`` shows agrees exactly with the traffic
posted and with the ledger, across receiver and worker processes."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from simulator import TrafficPlan, plan_traffic
from tests.e2e.sidecar_process import Sidecar, post_all, wait_for
from tests.metrics.conftest import promtool_check

pytestmark = pytest.mark.e2e

Samples = dict[str, list[tuple[dict[str, str], float]]]


def scrape_text(sidecar: Sidecar) -> str:
    response = httpx.get(f"{sidecar.base_url}/metrics", timeout=10)
    response.raise_for_status()
    return response.text


def parse(text: str) -> Samples:
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def total(found: Samples, name: str, **labels: str) -> float:
    return sum(
        value
        for got, value in found.get(name, [])
        if all(got.get(key) == want for key, want in labels.items())
    )


def ledger_truth(sidecar: Sidecar, plan: TrafficPlan) -> tuple[Counter[tuple[str, str]], int]:
    """Events by (channel, status) and messages with a sent -> final latency, per the ledger."""
    events: Counter[tuple[str, str]] = Counter()
    latencies = 0
    for message_id in plan.messages:
        message = sidecar.read(f"/v1/messages/{message_id}")
        for event in message["events"]:
            events[(event["channel"] or "other", event["status"])] += 1
        latencies += message["latencySeconds"] is not None
    return events, latencies


def wait_until_recorded(sidecar: Sidecar, plan: TrafficPlan) -> dict[str, Any]:
    def caught_up() -> Any:
        stats = sidecar.read("/v1/stats/webhook")
        done = (
            stats["eventsTotal"] >= plan.unique_events
            and stats["duplicatesTotal"] >= plan.duplicate_events
        )
        return stats if done else None

    result: dict[str, Any] = wait_for(caught_up, timeout=120, what="every event recorded")
    return result


@pytest.mark.parametrize(
    "settings",
    [{}, {"receiver_processes": "2", "workers": "3"}],
    ids=["one-receiver-two-workers", "two-receivers-three-workers"],
)
def test_the_metrics_agree_exactly_with_the_traffic_and_the_ledger(
    make_sidecar: Any, settings: dict[str, str], promtool: str
) -> None:
    # Given a running sidecar and traffic with resent requests and reordered events
    sidecar = make_sidecar(**settings).start()
    plan = plan_traffic(events=800, seed=31, duplicates=0.08, reorder=0.1, batch_share=0.2)
    assert plan.duplicate_events > 0
    assert plan.reordered_messages > 0

    # When it is posted and recorded
    result = post_all(sidecar.webhook_url, plan.bodies)
    assert result.statuses == [200] * len(plan.bodies)
    stats = wait_until_recorded(sidecar, plan)
    events, latencies = ledger_truth(sidecar, plan)

    def counted() -> Samples | None:
        found = parse(scrape_text(sidecar))
        done = (
            total(found, "qlara_events_total") >= plan.unique_events
            and total(found, "qlara_duplicate_events_total") >= plan.duplicate_events
            and total(found, "qlara_delivery_latency_seconds_count") >= latencies
            # counted inside the actor, acknowledged just after: wait for the acks too
            and total(found, "qlara_queue_messages", queue="work") == 0
        )
        return found if done else None

    found: Samples = wait_for(counted, timeout=60, what="the workers' counts")

    # Then the scrape agrees exactly with the plan and the ledger
    assert total(found, "qlara_events_total") == plan.unique_events
    by_label = Counter(
        {
            (labels["channel"], labels["status"]): int(value)
            for labels, value in found["qlara_events_total"]
            if value
        }
    )
    assert by_label == events
    assert total(found, "qlara_duplicate_events_total") == plan.duplicate_events
    assert total(found, "qlara_delivery_latency_seconds_count") == latencies
    assert total(found, "qlara_messages_pending") == stats["pending"] == 0
    accepted = total(found, "qlara_webhook_requests_total", outcome="accepted")
    spooled = total(found, "qlara_webhook_requests_total", outcome="spooled")
    assert accepted + spooled == len(plan.bodies)
    assert total(found, "qlara_webhook_ack_seconds_count") == len(plan.bodies)
    assert total(found, "qlara_webhook_delay_seconds_count") == plan.unique_events
    errors = sum(n for (_, status), n in events.items() if status in ("error", "expired"))
    assert total(found, "qlara_delivery_errors_total") == errors
    assert total(found, "qlara_delivery_errors_total", reason="other") == 0
    assert [v for _, v in found["qlara_build_info"]] == [1], found["qlara_build_info"]
    assert total(found, "qlara_queue_messages", queue="work") == 0
    # And no label carries a message id, a phone number or an error text
    values = {
        value
        for samples in found.values()
        for labels, _ in samples
        for name, value in labels.items()
        if name != "le"
    }
    assert not [v for v in values if v.startswith(("m-", "+")) or " " in v]
    # And promtool has nothing to say about the real scrape
    assert promtool_check(promtool, scrape_text(sidecar).encode()) == ""

    # When three more messages are sent and nothing more is heard of them
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    for index, channel in enumerate(("sms", "rcs", "whatsapp")):
        body = {"messageId": f"p-{index}", "status": "SENT", "timestamp": now, "channel": channel}
        response = httpx.post(sidecar.webhook_url, content=json.dumps(body), timeout=10)
        assert response.status_code == 200

    # Then they are pending, in the ledger and in the scrape alike
    wait_for(lambda: sidecar.read("/v1/stats/webhook")["pending"] == 3, timeout=30, what="3")
    # the counting hook runs after the commit the read API already sees
    found = wait_for(
        lambda: (
            (f := parse(scrape_text(sidecar)))
            and total(f, "qlara_events_total") >= plan.unique_events + 3
            and f
        ),
        timeout=30,
        what="the three new events counted",
    )
    for channel in ("sms", "rcs", "whatsapp"):
        assert total(found, "qlara_messages_pending", channel=channel) == 1
        assert total(found, "qlara_messages_pending_oldest_age_seconds", channel=channel) >= 0
    assert total(found, "qlara_events_total") == plan.unique_events + 3
