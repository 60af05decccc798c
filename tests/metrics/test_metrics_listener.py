"""The separate metrics listener with real processes: `up` with METRICS_PORT serves
``/metrics`` there only, and `qlara-sidecar metrics` on a worker host serves exactly what
that host's worker processes counted, which is what the ledger recorded."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from receiver.scrape import work_queue_size
from simulator import plan_traffic
from tests.e2e.sidecar_process import (
    READ_TOKEN,
    WEBHOOK_TOKEN,
    Sidecar,
    free_port,
    post_all,
    wait_for,
)
from tests.metrics.test_up import Samples, parse, total
from tests.sidecar.support import environment_without_settings
from workers import QUEUE_NAME

pytestmark = pytest.mark.e2e

METRICS_TOKEN = "e2e-metrics-token-0123456789abcdef"
#: Generous: on a loaded two-CPU machine several Python processes import the stack at once.
START_TIMEOUT_S = 120.0


def scrape(port: int, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"http://127.0.0.1:{port}/metrics", headers=headers, timeout=10)


def scraped(port: int, token: str | None = None) -> Samples:
    response = scrape(port, token)
    assert response.status_code == 200, response.text
    return parse(response.text)


def files_of(pid: int, directory: Path) -> list[str]:
    """The value files process ``pid`` wrote into a multiprocess directory."""
    return sorted(p.name for p in directory.glob(f"*_{pid}.db"))


def test_up_with_a_metrics_port_serves_the_metrics_there_only(make_sidecar: Any) -> None:
    # Given `up` with a separate metrics listener and a scrape token
    metrics_port = free_port()
    sidecar: Sidecar = make_sidecar(
        metrics_port=str(metrics_port), workers="1", metrics_token=METRICS_TOKEN
    ).start()
    health = f"http://127.0.0.1:{metrics_port}/healthz"
    wait_for(
        lambda: httpx.get(health, timeout=2).status_code == 200,
        timeout=START_TIMEOUT_S,
        what="the metrics listener to answer /healthz",
    )

    # Then the banner names the listener, and the receiver's port has no /metrics
    assert f"Metrics:       http://127.0.0.1:{metrics_port}/metrics" in sidecar.log()
    assert httpx.get(f"{sidecar.base_url}/metrics", timeout=10).status_code == 404
    authorized = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    assert httpx.get(f"{sidecar.base_url}/metrics", headers=authorized).status_code == 404
    # And the metrics listener wants the token
    assert scrape(metrics_port).status_code == 401
    assert scrape(metrics_port, READ_TOKEN).status_code == 401
    found = scraped(metrics_port, METRICS_TOKEN)
    for family in (
        "qlara_events_total",
        "qlara_webhook_requests_total",
        "qlara_webhook_ack_seconds_count",
        "qlara_messages_pending",
        "qlara_queue_messages",
        "qlara_spool_events",
        "qlara_scrape_source_up",
        "qlara_build_info",
    ):
        assert family in found, family
    assert total(found, "qlara_events_total") == 0
    up_sources = {labels["source"]: value for labels, value in found["qlara_scrape_source_up"]}
    assert up_sources == {
        "pending": 1,
        "work_queue": 1,
        "dead_letter_queue": 1,
        "spool": 1,
        "registration": 1,
        "counts": 1,
    }

    # When one event is posted and recorded
    event = {
        "messageId": "listener-1",
        "status": "DELIVERED",
        "timestamp": "2025-04-08T14:30:00Z",
        "channel": "sms",
    }
    response = httpx.post(sidecar.webhook_url, json=event, timeout=10)
    assert response.status_code == 200

    # Then the metrics listener counts it: the receiver's request and the worker's event
    def counted() -> Samples | None:
        now = scraped(metrics_port, METRICS_TOKEN)
        return now if total(now, "qlara_events_total") >= 1 else None

    found = wait_for(counted, timeout=60, what="the event in the metrics")
    assert total(found, "qlara_events_total") == 1
    assert total(found, "qlara_events_total", channel="sms", status="delivered") == 1
    accepted = total(found, "qlara_webhook_requests_total", outcome="accepted")
    spooled = total(found, "qlara_webhook_requests_total", outcome="spooled")
    assert accepted + spooled == 1
    assert total(found, "qlara_webhook_ack_seconds_count") == 1
    assert [value for _, value in found["qlara_build_info"]] == [1]
    # And the listener wrote nothing into up's directory
    listener = sidecar.children("-m sidecar metrics")
    assert len(listener) == 1
    assert files_of(listener[0], sidecar.data_dir / "metrics") == []


class Role:
    """One `qlara-sidecar <role>` process with its output in a file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log_path = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "sidecar", *args],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def answers(self, url: str) -> bool:
        if self.process.poll() is not None:
            pytest.fail(f"exited with {self.process.returncode}:\n{self.log_path.read_text()}")
        return httpx.get(url, timeout=2).status_code == 200

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def start_role(tmp_path: Path) -> Iterator[Callable[..., Role]]:
    """Start `qlara-sidecar` roles; every one started is stopped after the test."""
    started: list[Role] = []

    def start(*args: str, **settings: str) -> Role:
        env = environment_without_settings(log_format="json", **settings)
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        role = Role(list(args), env, tmp_path / f"{args[0]}-{len(started)}.log")
        started.append(role)
        return role

    yield start
    # In the reverse order of their start: the metrics listener first.
    for role in reversed(started):
        role.stop()


def ledger_by_label(receiver_url: str, message_ids: list[str]) -> Counter[tuple[str, str]]:
    """Events by (channel, status), per the ledger, through the read API."""
    events: Counter[tuple[str, str]] = Counter()
    headers = {"Authorization": f"Bearer {READ_TOKEN}"}
    with httpx.Client(base_url=receiver_url, headers=headers, timeout=10) as client:
        for message_id in message_ids:
            response = client.get(f"/v1/messages/{message_id}")
            response.raise_for_status()
            for event in response.json()["events"]:
                events[(event["channel"] or "other", event["status"])] += 1
    return events


def test_the_metrics_command_on_a_worker_host_serves_what_its_workers_recorded(
    start_role: Callable[..., Role],
    tmp_path: Path,
    redis_url: str,
    namespace: str,
    postgres_url: str,
) -> None:
    shared = {"redis_url": redis_url, "database_url": postgres_url, "namespace": namespace}
    # Given a receiver host (its own data dir, its metrics on a listener of their own) ...
    receiver_port = free_port()
    receiver_url = f"http://127.0.0.1:{receiver_port}"
    receiver_metrics_port = free_port()
    receiver = start_role(
        "receiver",
        "--processes",
        "1",
        data_dir=str(tmp_path / "receiver-host"),
        port=str(receiver_port),
        metrics_port=str(receiver_metrics_port),
        webhook_token=WEBHOOK_TOKEN,
        read_token=READ_TOKEN,
        **shared,
    )
    wait_for(
        lambda: receiver.answers(f"{receiver_url}/readyz"),
        timeout=START_TIMEOUT_S,
        what="the receiver",
    )
    # ... and a worker host with two worker processes
    worker_host = tmp_path / "worker-host"
    start_role("worker", "--processes", "2", data_dir=str(worker_host), **shared)
    counted_dir = worker_host / "metrics" / "worker"

    def stats() -> dict[str, Any]:
        response = httpx.get(
            f"{receiver_url}/v1/stats/webhook",
            headers={"Authorization": f"Bearer {READ_TOKEN}"},
            timeout=10,
        )
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    # And traffic, the first half of it recorded before the metrics listener starts
    plan = plan_traffic(events=160, seed=7, duplicates=0.05, reorder=0.1, batch_share=0.2)
    half = len(plan.bodies) // 2
    webhook = f"{receiver_url}/webhook/{WEBHOOK_TOKEN}"
    assert post_all(webhook, plan.bodies[:half]).statuses == [200] * half

    def settled() -> int | None:
        # Everything posted so far is recorded once neither the spool nor the broker holds
        # any of it (in flight and delayed retries included).
        spooled = httpx.get(f"{receiver_url}/readyz", timeout=10).json()["spool"]["events"]
        queue = redis.Redis.from_url(redis_url)
        try:
            waiting = work_queue_size(queue, f"{namespace}:{QUEUE_NAME}")
        finally:
            queue.close()
        return int(stats()["eventsTotal"]) if spooled == 0 and waiting == 0 else None

    recorded_first = wait_for(settled, timeout=120, what="the first half recorded")

    # When `qlara-sidecar metrics` starts on the worker host
    metrics_port = free_port()
    listener = start_role(
        "metrics", "--metrics-port", str(metrics_port), data_dir=str(worker_host), **shared
    )
    wait_for(
        lambda: listener.answers(f"http://127.0.0.1:{metrics_port}/healthz"),
        timeout=START_TIMEOUT_S,
        what="the metrics listener",
    )

    # Then it shows what the workers counted before it started (the directory not emptied)
    found = scraped(metrics_port)
    assert total(found, "qlara_events_total") == recorded_first

    # When the rest of the traffic is posted and recorded
    rest = plan.bodies[half:]
    assert post_all(webhook, rest).statuses == [200] * len(rest)
    wait_for(
        lambda: stats()["eventsTotal"] >= plan.unique_events,
        timeout=120,
        what="every event recorded",
    )

    # Then its qlara_events_total is what the ledger recorded, label by label
    def caught_up() -> Samples | None:
        now = scraped(metrics_port)
        done = (
            total(now, "qlara_events_total") >= plan.unique_events
            # counted inside the actor, acknowledged just after: wait for the acks too
            and total(now, "qlara_queue_messages", queue="work") == 0
        )
        return now if done else None

    found = wait_for(caught_up, timeout=60, what="the workers' counts")
    ledger_stats = stats()
    assert total(found, "qlara_events_total") == ledger_stats["eventsTotal"] == plan.unique_events
    by_label = Counter(
        {
            (labels["channel"], labels["status"]): int(value)
            for labels, value in found["qlara_events_total"]
            if value
        }
    )
    assert by_label == ledger_by_label(receiver_url, list(plan.messages))
    assert total(found, "qlara_duplicate_events_total") == ledger_stats["duplicatesTotal"]
    # And the ledger's and the queue's gauges, with no spool (this host has none)
    assert total(found, "qlara_messages_pending") == ledger_stats["pending"]
    assert total(found, "qlara_queue_messages", queue="work") == 0
    up_sources = {labels["source"]: value for labels, value in found["qlara_scrape_source_up"]}
    assert up_sources == {
        "pending": 1,
        "work_queue": 1,
        "dead_letter_queue": 1,
        "registration": 1,
        "counts": 1,
    }
    # And no webhook request counted on a host that received none
    assert "qlara_webhook_requests_total" in found
    assert total(found, "qlara_webhook_requests_total") == 0
    assert total(found, "qlara_webhook_ack_seconds_count") == 0
    # And the listener wrote nothing into the workers' directory
    assert files_of(listener.process.pid, counted_dir) == []
    assert list(counted_dir.glob("*.db"))

    # And the receiver host's own listener counted every request, and no event (no worker
    # runs there), while its webhook port serves no /metrics
    assert httpx.get(f"{receiver_url}/metrics", timeout=10).status_code == 404
    on_receiver = scraped(receiver_metrics_port)
    accepted = total(on_receiver, "qlara_webhook_requests_total", outcome="accepted")
    spooled = total(on_receiver, "qlara_webhook_requests_total", outcome="spooled")
    assert accepted + spooled == len(plan.bodies)
    assert total(on_receiver, "qlara_events_total") == 0
    assert total(on_receiver, "qlara_spool_events") == 0
