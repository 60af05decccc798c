"""Workers under test: a real RedisBroker on the test's Redis namespace, a real SQLite ledger,
and a real ``dramatiq.Worker`` in this process (or ``run_worker`` in a child process)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import dramatiq
import pytest
from dramatiq.brokers.redis import RedisBroker

from ledger import Ledger
from tests.workers.support import WorkerProcess
from workers import WorkerConfig, build_broker


@pytest.fixture
def config(redis_url: str, namespace: str, sqlite_url: str) -> WorkerConfig:
    """A worker config with backoffs short enough for tests."""
    return WorkerConfig(
        redis_url=redis_url,
        database_url=sqlite_url,
        namespace=namespace,
        threads=2,
        max_retries=2,
        min_backoff_ms=50,
        max_backoff_ms=200,
        purge_interval_s=3600.0,
    )


@pytest.fixture
def ledger(config: WorkerConfig) -> Iterator[Ledger]:
    """The test's own handle on the workers' ledger (migrated), for set-up and checks."""
    opened = Ledger.connect(config.database_url, migrate=True)
    yield opened
    opened.close()


@pytest.fixture
def broker(config: WorkerConfig, ledger: Ledger) -> Iterator[RedisBroker]:
    built = build_broker(config)
    yield built
    built.client.close()


@pytest.fixture
def start_worker(broker: RedisBroker) -> Iterator[Callable[[], dramatiq.Worker]]:
    """Starts a Dramatiq worker on the test broker in this process; stopped after the test."""
    started: list[dramatiq.Worker] = []

    def start() -> dramatiq.Worker:
        worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
        worker.start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop(timeout=10_000)


@pytest.fixture
def spawn_worker() -> Iterator[Callable[..., WorkerProcess]]:
    """Starts ``run_worker`` in child processes (``spawn(config, **extra_env)``); any still
    running are killed afterwards."""
    spawned: list[WorkerProcess] = []

    def spawn(config: WorkerConfig, **extra_env: str) -> WorkerProcess:
        worker = WorkerProcess(config, **extra_env)
        spawned.append(worker)
        return worker

    yield spawn
    for worker in spawned:
        if worker.process.poll() is None:
            worker.kill()
        if worker.process.stdout is not None:
            worker.process.stdout.close()
