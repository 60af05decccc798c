"""Nothing acknowledged is lost: a worker and the broker SIGKILLed mid-run."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

import pytest

from qlara import parse_body
from simulator import plan_traffic
from tests.e2e.sidecar_process import PostResult, Sidecar, post_all, wait_for

pytestmark = pytest.mark.e2e


def test_every_acknowledged_event_survives_a_killed_worker_and_a_killed_broker(
    make_sidecar: Callable[..., Sidecar],
) -> None:
    # Given the sidecar on its embedded defaults, with a short broker heartbeat so a dead
    # worker's unacknowledged messages come back quickly
    sidecar = make_sidecar(broker_heartbeat_timeout="3").start()
    plan = plan_traffic(events=3000, seed=21, duplicates=0.05, reorder=0.05)
    third = len(plan.bodies) // 3
    first, second, last = (
        plan.bodies[:third],
        plan.bodies[third : 2 * third],
        plan.bodies[2 * third :],
    )
    results: list[PostResult] = []

    # When a first third is posted and a worker is SIGKILLed while it works on the backlog
    results.append(post_all(sidecar.webhook_url, first, concurrency=4))
    workers = sidecar.children("worker")
    assert workers, "no worker child found"
    os.kill(workers[0], signal.SIGKILL)
    # And the broker is SIGKILLed, and the next third arrives while it is down or restarting
    brokers = sidecar.children("valkey") + sidecar.children("redis-server")
    assert brokers, "no embedded broker found"
    os.kill(brokers[0], signal.SIGKILL)
    results.append(post_all(sidecar.webhook_url, second, concurrency=4, retry_503=True))
    # And the rest arrives once the supervisor has restarted it
    wait_for(lambda: sidecar.read("/readyz")["redis"], timeout=60, what="the broker to be back")
    results.append(post_all(sidecar.webhook_url, last, concurrency=4, retry_503=True))

    # Then every event that got a 200 is in the ledger exactly once
    acknowledged = [body for result in results for body in result.ok()]
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
