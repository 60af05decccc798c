"""Nothing acknowledged is lost: a worker and the broker SIGKILLed mid-run."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable

import pytest

from qlara import parse_body
from qlara.traffic import plan_traffic
from tests.e2e.sidecar_process import PostResult, Sidecar, post_all, wait_for

pytestmark = pytest.mark.e2e


def test_every_acknowledged_event_survives_a_killed_worker_and_a_killed_broker(
    make_sidecar: Callable[..., Sidecar],
) -> None:
    # Given the sidecar on its embedded defaults, with a short broker heartbeat so a dead
    # worker's unacknowledged messages come back quickly
    sidecar = make_sidecar(broker_heartbeat_timeout="3").start()
    plan = plan_traffic(events=3000, seed=21, duplicates=0.05, reorder=0.05)
    results: list[PostResult] = []
    poster = threading.Thread(
        target=lambda: results.append(
            post_all(sidecar.webhook_url, plan.bodies, concurrency=4, retry_503=True)
        )
    )

    # When traffic flows, one worker is SIGKILLed, then the broker is SIGKILLed
    poster.start()
    wait_for(
        lambda: sidecar.read("/v1/stats/webhook")["eventsTotal"] > 300,
        timeout=60,
        what="traffic to be recorded",
    )
    workers = sidecar.children("worker")
    assert workers, "no worker child found"
    os.kill(workers[0], signal.SIGKILL)
    wait_for(
        lambda: sidecar.read("/v1/stats/webhook")["eventsTotal"] > 900,
        timeout=60,
        what="traffic to continue after the worker was killed",
    )
    brokers = [
        p
        for p in sidecar.children()
        if p in sidecar.children("valkey") or p in sidecar.children("redis-server")
    ]
    assert brokers, "no embedded broker found"
    os.kill(brokers[0], signal.SIGKILL)
    poster.join(timeout=300)
    assert not poster.is_alive()

    # Then every event that got a 200 is in the ledger exactly once
    result = results[0]
    acknowledged = result.ok()
    assert len(acknowledged) == len(plan.bodies), "every request was acknowledged in the end"
    unique = {
        (e.message_id, e.status, e.event_time, e.part)
        for body in acknowledged
        for e in parse_body(body).events
    }
    stats = wait_for(
        lambda: (s := sidecar.read("/v1/stats/webhook"))["eventsTotal"] >= len(unique) and s,
        timeout=180,
        what="the ledger to catch up",
    )
    assert stats["eventsTotal"] == len(unique)
    assert stats["duplicatesTotal"] == plan.duplicate_events
    # And the spool carried events while the broker was down, and the supervisor said so
    log = sidecar.log()
    assert "webhook_spooled" in log
    assert "spool_drained" in log
    assert "restarted" in log
