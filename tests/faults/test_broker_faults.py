"""The broker stalls, runs out of memory, or its link breaks while webhooks arrive: every
event answered 200 is recorded exactly once, without restarting anything."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
import redis

from simulator import plan_traffic
from tests.conftest import OwnRedis
from tests.e2e.sidecar_process import PostResult, Sidecar, post_all, wait_for
from tests.faults.conftest import TcpProxy, assert_all_recorded_without_restarts
from tests.workers.support import write_locked
from workers import QUEUE_NAME

pytestmark = pytest.mark.e2e

#: How long the ledger may take to hold everything once a fault has ended: the broker's
#: heartbeat timeout (set to 5 s here) for a requeue, the spool's drain, and the backlog.
SETTLE_S = 120


def thirds(bodies: list[bytes]) -> tuple[list[bytes], list[bytes], list[bytes]]:
    third = len(bodies) // 3
    return bodies[:third], bodies[third : 2 * third], bodies[2 * third :]


def started_on(
    make_sidecar: Callable[..., Sidecar], redis_url: str, seed: int
) -> tuple[Sidecar, list[int], tuple[list[bytes], list[bytes], list[bytes]], list[PostResult]]:
    """The sidecar on ``redis_url`` (short heartbeat), its worker processes, traffic in three
    parts, and the answers to the first part, posted."""
    sidecar = make_sidecar(redis_url=redis_url, broker_heartbeat_timeout="5").start()
    parts = thirds(plan_traffic(events=1500, seed=seed, duplicates=0.05).bodies)
    results = [post_all(sidecar.webhook_url, parts[0], concurrency=8)]
    return sidecar, sidecar.children("worker"), parts, results


def test_a_broker_stalled_for_seconds_under_load_strands_nothing(
    make_sidecar: Callable[..., Sidecar], own_redis: OwnRedis
) -> None:
    # Given the sidecar on a Redis of the test's own, and traffic in three parts
    sidecar, workers, (_, second, last), results = started_on(make_sidecar, own_redis.url, 41)

    # When Redis stops answering (SIGSTOP) for 6 s while the second part arrives: longer
    # than the workers' 5 s socket timeout, so fetches in flight time out on the client
    # and run on the server when it resumes
    own_redis.pause()
    resume = threading.Timer(6.0, own_redis.resume)
    resume.start()
    try:
        results.append(post_all(sidecar.webhook_url, second, concurrency=8, retry_503=True))
    finally:
        resume.join()
    results.append(post_all(sidecar.webhook_url, last, concurrency=8))

    # Then every event answered 200 is recorded once, with no process restarted
    assert all(status == 200 for result in results for status in result.statuses)
    assert_all_recorded_without_restarts(sidecar, results, workers, timeout=SETTLE_S)


def test_a_broker_out_of_memory_loses_nothing_and_strands_no_acknowledgement(
    make_sidecar: Callable[..., Sidecar], own_redis: OwnRedis
) -> None:
    sidecar, workers, (_, second, last), results = started_on(make_sidecar, own_redis.url, 43)
    admin = redis.Redis.from_url(own_redis.url)
    ledger = f"sqlite:///{sidecar.data_dir / 'ledger.sqlite3'}"

    # Given workers holding fetched messages they cannot record yet (the ledger locked)
    with write_locked(ledger):
        results.append(post_all(sidecar.webhook_url, second[:30], concurrency=8))
        wait_for(
            lambda: admin.llen(f"qlara:{QUEUE_NAME}") == 0,
            timeout=30,
            what="the workers to fetch every queued message",
        )
        # When Redis refuses every write (maxmemory reached, noeviction), so that their
        # acknowledgements fail once the ledger lets them record
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", 1)
    try:
        # And webhooks keep arriving meanwhile
        results.append(post_all(sidecar.webhook_url, second[30:], concurrency=8))
    finally:
        admin.config_set("maxmemory", 0)
    results.append(post_all(sidecar.webhook_url, last, concurrency=8))
    admin.close()

    # Then every 200 is recorded once, and no acknowledgement waits for a restart
    assert all(status == 200 for result in results for status in result.statuses)
    assert_all_recorded_without_restarts(sidecar, results, workers, timeout=SETTLE_S)
    assert "OutOfMemoryError" in sidecar.log()  # the fault did happen


def test_a_link_to_the_broker_that_keeps_breaking_loses_nothing(
    make_sidecar: Callable[..., Sidecar],
    own_redis: OwnRedis,
    tcp_proxy: Callable[[int], TcpProxy],
) -> None:
    # Given the sidecar reaching its Redis through a relay that resets every connection
    # every half second while traffic flows
    proxy = tcp_proxy(own_redis.port)
    sidecar = make_sidecar(redis_url=proxy.url, broker_heartbeat_timeout="5").start()
    workers = sidecar.children("worker")
    bodies = plan_traffic(events=1500, seed=47, duplicates=0.05, reorder=0.05).bodies
    stop = threading.Event()

    def cut_every_half_second() -> None:
        # Three cuts at least, however quickly the traffic is posted: counting the posting's
        # duration in half seconds would make the fault depend on the machine's speed
        requested = 0
        while not stop.wait(0.5) or requested < 3:
            proxy.cut()
            requested += 1

    cutter = threading.Thread(target=cut_every_half_second, daemon=True)
    cutter.start()
    try:
        results = [post_all(sidecar.webhook_url, bodies, concurrency=8, retry_503=True)]
    finally:
        stop.set()
        cutter.join()
    # (a cut is made in the relay's own thread, soon after it is asked for)
    wait_for(lambda: proxy.cuts >= 3, timeout=10, what="the cuts asked for to be made")

    # Then every 200 is recorded once, once the link holds again
    assert proxy.cuts >= 3
    assert all(status == 200 for status in results[0].statuses)
    assert_all_recorded_without_restarts(sidecar, results, workers, timeout=SETTLE_S)
