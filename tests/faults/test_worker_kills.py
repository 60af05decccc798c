"""Workers SIGKILLed at the two moments that matter: before their ledger write commits, and
after it commits but before the broker hears the acknowledgement. Either way every event
answered 200 is in the ledger exactly once (no loss, and no second copy counted as a
duplicate), once the supervisor has restarted the workers."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import redis

from qlara import parse_body
from simulator import plan_traffic
from tests.conftest import OwnRedis
from tests.e2e.sidecar_process import PostResult, Sidecar, post_all, wait_for
from tests.e2e.test_sends import metric
from tests.faults.conftest import TcpProxy
from tests.workers.support import write_locked
from workers import QUEUE_NAME

pytestmark = pytest.mark.e2e

#: How long the ledger may take to hold everything once the workers are back: the broker's
#: heartbeat timeout (5 s here) for the requeue, a restart, the backlog.
SETTLE_S = 120


def _unique(results: list[PostResult]) -> int:
    return len(
        {
            (e.message_id, e.status, e.event_time, e.part)
            for result in results
            for body in result.ok()
            for e in parse_body(body).events
        }
    )


def _kill_workers(sidecar: Sidecar) -> list[int]:
    workers = sidecar.children("worker")
    assert workers, "no worker process found"
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    return workers


def _all_recorded_once(sidecar: Sidecar, results: list[PostResult], killed: list[int]) -> None:
    expected = _unique(results)
    stats = wait_for(
        lambda: (s := sidecar.read("/v1/stats/webhook"))["eventsTotal"] >= expected and s,
        timeout=SETTLE_S,
        what=f"the {expected} acknowledged events in the ledger",
    )
    assert stats["eventsTotal"] == expected
    # No event was counted twice: a message processed again is recognised as such
    assert stats["duplicatesTotal"] == 0
    # And the workers that died were replaced, by the supervisor, not by the test
    assert not set(sidecar.children("worker")) & set(killed)
    assert "restarted" in sidecar.log()


def _started(
    make_sidecar: Callable[..., Sidecar], redis_url: str, seed: int
) -> tuple[Sidecar, list[bytes], list[bytes], list[PostResult]]:
    sidecar = make_sidecar(redis_url=redis_url, broker_heartbeat_timeout="5").start()
    bodies = plan_traffic(events=600, seed=seed, duplicates=0.0, reorder=0.05).bodies
    first, rest = bodies[:200], bodies[200:]
    results = [post_all(sidecar.webhook_url, first, concurrency=8)]
    wait_for(
        lambda: sidecar.read("/v1/stats/webhook")["eventsTotal"] == _unique(results),
        timeout=60,
        what="the first events in the ledger",
    )
    return sidecar, rest[:60], rest[60:], results


@contextmanager
def fetched_and_waiting_on_the_ledger(
    sidecar: Sidecar, own_redis: OwnRedis, held: list[bytes], results: list[PostResult]
) -> Iterator[None]:
    """Post ``held`` while the ledger's write lock is taken, and wait inside until the
    workers have fetched every queued message (they wait on the lock); the lock is released
    when the block ends."""
    ledger = f"sqlite:///{sidecar.data_dir / 'ledger.sqlite3'}"
    admin = redis.Redis.from_url(own_redis.url)
    try:
        with write_locked(ledger):
            results.append(post_all(sidecar.webhook_url, held, concurrency=8))
            wait_for(
                lambda: admin.llen(f"qlara:{QUEUE_NAME}") == 0,
                timeout=30,
                what="the workers to fetch every queued message",
            )
            yield
    finally:
        admin.close()


def test_workers_killed_before_their_ledger_write_commits_lose_nothing(
    make_sidecar: Callable[..., Sidecar], own_redis: OwnRedis
) -> None:
    sidecar, held, later, results = _started(make_sidecar, own_redis.url, seed=71)

    # Given workers that have fetched messages and wait on the ledger's write lock
    with fetched_and_waiting_on_the_ledger(sidecar, own_redis, held, results):
        # When every worker is SIGKILLed inside its transaction
        killed = _kill_workers(sidecar)
    results.append(post_all(sidecar.webhook_url, later, concurrency=8))

    # Then every event acknowledged is recorded once by the workers that replace them
    _all_recorded_once(sidecar, results, killed)


def test_workers_killed_after_their_ledger_write_before_the_ack_record_nothing_twice(
    make_sidecar: Callable[..., Sidecar],
    own_redis: OwnRedis,
    tcp_proxy: Callable[[int], TcpProxy],
) -> None:
    # Given the sidecar reaching its broker through a relay the test controls
    proxy = tcp_proxy(own_redis.port)
    sidecar, held, later, results = _started(make_sidecar, proxy.url, seed=73)
    recorded_before = sidecar.read("/v1/stats/webhook")["eventsTotal"]

    # And workers that have fetched messages and wait on the ledger's write lock
    with fetched_and_waiting_on_the_ledger(sidecar, own_redis, held, results):
        # And a relay that passes nothing on to the broker from now on: no acknowledgement
        # the workers send can reach it (a paused broker would still read what its socket
        # had received once resumed)
        proxy.hold()
    try:
        # When the lock is gone, their writes commit (the read API reads the ledger)
        wait_for(
            lambda: sidecar.read("/v1/stats/webhook")["eventsTotal"] > recorded_before,
            timeout=30,
            what="the held messages' writes to commit",
        )
        # And every worker is SIGKILLed, and its connections dropped with what they held
        killed = _kill_workers(sidecar)
        proxy.cut()
    finally:
        proxy.release()
    results.append(post_all(sidecar.webhook_url, later, concurrency=8))

    # Then the messages come back to the new workers, which record nothing twice
    _all_recorded_once(sidecar, results, killed)
    # And they did come back: processed again, and found already recorded
    wait_for(
        lambda: metric(sidecar, "qlara_receipts_replayed_total") > 0,
        timeout=SETTLE_S,
        what="a message processed again",
    )
