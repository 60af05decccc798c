"""The ledger refuses for a while under load: SQLite locked past its busy timeout, the
sidecar's PostgreSQL connections terminated, PostgreSQL refusing every connection for longer
than a failing event's retries last. Every event answered 200 is recorded exactly
once once it answers again, without restarting anything."""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Callable

import httpx
import psycopg
import pytest
from sqlalchemy import make_url

from simulator import plan_traffic
from tests.e2e.sidecar_process import READ_TOKEN, Sidecar, post_all, wait_for
from tests.e2e.test_sends import metric
from tests.faults.conftest import TcpProxy, assert_all_recorded_without_restarts
from tests.workers.support import write_locked

pytestmark = pytest.mark.e2e

SETTLE_S = 120
#: What Qlara waits for an answer; a refusal must come well within it.
QLARA_TIMEOUT_S = 5.0


def test_sqlite_locked_past_its_busy_timeout_loses_nothing(
    make_sidecar: Callable[..., Sidecar],
) -> None:
    sidecar = make_sidecar(workers="1").start()
    workers = sidecar.children("worker")
    bodies = plan_traffic(events=900, seed=53, duplicates=0.05).bodies
    half = len(bodies) // 2
    results = [post_all(sidecar.webhook_url, bodies[:half], concurrency=8)]

    # When another process holds the ledger's write lock while the rest arrives, until a
    # worker has waited out the 5 s busy timeout and failed
    with write_locked(f"sqlite:///{sidecar.data_dir / 'ledger.sqlite3'}"):
        results.append(post_all(sidecar.webhook_url, bodies[half:], concurrency=8))
        wait_for(
            lambda: "database is locked" in sidecar.log(),
            timeout=60,
            what="a worker to fail on the locked ledger",
        )

    # Then everything answered 200 is recorded once the lock is gone
    assert all(status == 200 for result in results for status in result.statuses)
    assert_all_recorded_without_restarts(sidecar, results, workers, timeout=SETTLE_S)


def test_postgresql_connections_terminated_under_load_lose_nothing(
    make_sidecar: Callable[..., Sidecar], postgres_url: str, postgres_admin_url: str
) -> None:
    sidecar = make_sidecar(database_url=postgres_url).start()
    workers = sidecar.children("worker")
    database = postgres_url.rsplit("/", 1)[1]
    bodies = plan_traffic(events=1200, seed=59, duplicates=0.05, reorder=0.05).bodies
    stop = threading.Event()
    terminated: list[int] = []

    def terminate_every_second() -> None:
        with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
            while not stop.wait(1.0):
                rows = admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (database,),
                ).fetchall()
                terminated.extend(1 for _ in rows)

    killer = threading.Thread(target=terminate_every_second, daemon=True)
    killer.start()
    try:
        results = [post_all(sidecar.webhook_url, bodies, concurrency=8)]
        # a few more terminations while the workers catch up
        after_posting = len(terminated)
        wait_for(
            lambda: len(terminated) >= after_posting + 3,
            timeout=60,
            what="three more rounds of terminated connections",
        )
    finally:
        stop.set()
        killer.join()

    assert terminated
    assert all(status == 200 for status in results[0].statuses)
    assert_all_recorded_without_restarts(sidecar, results, workers, timeout=SETTLE_S)


def test_postgresql_refusing_for_longer_than_the_retries_last_loses_nothing(
    make_sidecar: Callable[..., Sidecar],
    postgres_url: str,
    tcp_proxy: Callable[[int], TcpProxy],
) -> None:
    # Given the sidecar reaching PostgreSQL through a relay, allowing a failing event one
    # retry (so that an outage of seconds here outlasts them, as one of minutes would the
    # default eight)
    url = make_url(postgres_url)
    proxy = tcp_proxy(url.port or 5432)
    through = url.set(port=proxy.port).render_as_string(hide_password=False)
    sidecar = make_sidecar(database_url=through, max_retries="1").start()
    workers = sidecar.children("worker")
    bodies = plan_traffic(events=900, seed=61, duplicates=0.05).bodies
    third = len(bodies) // 3
    results = [post_all(sidecar.webhook_url, bodies[:third], concurrency=8)]
    wait_for(
        lambda: sidecar.read("/v1/stats/webhook")["eventsTotal"] > 0,
        timeout=60,
        what="the first events in the ledger",
    )

    # When PostgreSQL refuses every connection while webhooks keep arriving
    proxy.refuse()
    results.append(post_all(sidecar.webhook_url, bodies[third : 2 * third], concurrency=8))

    # Then the webhook keeps acknowledging (it needs the broker, not the ledger), the read
    # API says it cannot answer now, and events outlive their retries without being lost
    assert all(status == 200 for status in results[-1].statuses)
    stats = httpx.get(
        f"{sidecar.base_url}/v1/stats/webhook",
        headers={"Authorization": f"Bearer {READ_TOKEN}"},
        timeout=QLARA_TIMEOUT_S,
    )
    assert stats.status_code == 503
    wait_for(
        lambda: most_failures_of_one_message(sidecar.log()) > 2,
        timeout=60,
        what="an event to fail more often than its retries allow while PostgreSQL refuses",
    )
    assert proxy.refused > 0

    # And once PostgreSQL takes connections again, every event is recorded once, none
    # dead-lettered, with no restart
    proxy.admit()
    results.append(post_all(sidecar.webhook_url, bodies[2 * third :], concurrency=8))
    assert all(status == 200 for result in results for status in result.statuses)
    assert_all_recorded_without_restarts(sidecar, results, workers, timeout=SETTLE_S)
    assert metric(sidecar, "qlara_queue_messages", queue="dead_letter") == 0


def most_failures_of_one_message(log: str) -> int:
    """The most times one message failed to be recorded, from the workers' JSON log."""
    failures: Counter[str] = Counter()
    for line in log.splitlines():
        if line.startswith("{"):
            event = json.loads(line).get("event", "")
            if event.startswith("Failed to process message"):
                found = re.search(r"message_id=(\w+)", event)
                if found:
                    failures[found.group(1)] += 1
    return max(failures.values(), default=0)
