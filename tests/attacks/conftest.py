"""What the attack tests share: a migrated ledger per backend, the real receiver on it in
Litestar's TestClient, and real workers to drain what it queued."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dramatiq
import pytest
from litestar.testing import TestClient

from ledger import Ledger
from receiver import ReceiverConfig, create_app
from tests.receiver.conftest import TOKEN
from workers import ACTOR_NAME, QUEUE_NAME, WorkerConfig, build_broker

READ_TOKEN = "read-token-attacks"


@pytest.fixture
def backend(database_url: str) -> str:
    Ledger.connect(database_url).close()
    return database_url


@pytest.fixture
def make_client(
    backend: str, tmp_path: Path, redis_url: str, namespace: str
) -> Iterator[Callable[..., TestClient[Any]]]:
    """Start the real receiver on ``backend`` (settings changed as given); stopped after."""
    started: list[TestClient[Any]] = []

    def make(**changes: Any) -> TestClient[Any]:
        config = ReceiverConfig(
            data_dir=tmp_path / "data",
            redis_url=redis_url,
            database_url=backend,
            webhook_token=TOKEN,
            read_token=READ_TOKEN,
            queue_name=QUEUE_NAME,
            actor_name=ACTOR_NAME,
            namespace=namespace,
            redis_timeout=5.0,
            enqueue_deadline=10.0,
            **changes,
        )
        client = TestClient(create_app(config), raise_server_exceptions=False)
        started.append(client.__enter__())
        return client

    yield make
    for client in started:
        client.__exit__(None, None, None)


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
