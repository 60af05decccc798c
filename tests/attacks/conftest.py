"""What the attack tests share: a migrated ledger per backend, the real receiver's config on
it, and real workers to drain what it queued."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import dramatiq
import pytest

from ledger import Ledger
from receiver import ReceiverConfig
from tests.receiver.conftest import (  # noqa: F401 - make_client is a fixture used here
    READ_TOKEN,
    SEND_TOKEN,
    SLOW_ENQUEUE_DEADLINE,
    SLOW_REDIS_TIMEOUT,
    TOKEN,
    make_client,
)
from workers import ACTOR_NAME, QUEUE_NAME, WorkerConfig, build_broker


@pytest.fixture
def backend(database_url: str) -> str:
    Ledger.connect(database_url).close()
    return database_url


@pytest.fixture
def config(backend: str, tmp_path: Path, redis_url: str, namespace: str) -> ReceiverConfig:
    """A receiver on ``backend`` and the workers' queue (so that :func:`drain` records what
    it accepted), with tests/receiver's credentials and generous Redis times; started with
    tests/receiver's ``make_client``."""
    return ReceiverConfig(
        data_dir=tmp_path / "data",
        redis_url=redis_url,
        database_url=backend,
        webhook_token=TOKEN,
        read_token=READ_TOKEN,
        send_token=SEND_TOKEN,
        queue_name=QUEUE_NAME,
        actor_name=ACTOR_NAME,
        namespace=namespace,
        redis_timeout=SLOW_REDIS_TIMEOUT,
        enqueue_deadline=SLOW_ENQUEUE_DEADLINE,
    )


@pytest.fixture
def drain(backend: str, redis_url: str, namespace: str) -> Iterator[Callable[[], None]]:
    """Record everything queued so far with a real worker, started only now, so that what
    was queued can be read first; stopped again afterwards."""
    broker = build_broker(
        WorkerConfig(redis_url=redis_url, database_url=backend, namespace=namespace)
    )

    def drained() -> None:
        worker = dramatiq.Worker(broker, worker_threads=4, worker_timeout=100)
        worker.start()
        try:
            broker.join(QUEUE_NAME, timeout=120_000)
        finally:
            worker.stop(timeout=10_000)

    yield drained
    broker.client.close()
