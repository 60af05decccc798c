"""The ledger refuses for a while under load: SQLite locked past its busy timeout, the
sidecar's PostgreSQL connections terminated. Every event answered 200 is recorded exactly
once once it answers again, without restarting anything."""

from __future__ import annotations

import threading
from collections.abc import Callable

import psycopg
import pytest

from qlara.traffic import plan_traffic
from tests.e2e.sidecar_process import Sidecar, post_all, wait_for
from tests.faults.conftest import assert_all_recorded_without_restarts
from tests.workers.support import write_locked

pytestmark = pytest.mark.e2e

SETTLE_S = 120


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
