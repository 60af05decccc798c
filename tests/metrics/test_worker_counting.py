"""Counting in real workers: each recorded receipt counted once, even when delivered twice;
each dead letter counted with its bounded reason."""

from __future__ import annotations

from collections.abc import Iterator

import dramatiq
import pytest
from dramatiq.brokers.redis import RedisBroker

from ledger import Ledger
from metrics import StateCollector, counts_owner
from tests.metrics.conftest import Samples
from tests.workers.support import join, make_receipt, wait_for
from workers import WorkerConfig, build_broker, enqueue_receipt
from workers.broker import receipt_message


@pytest.fixture
def config(redis_url: str, namespace: str, sqlite_url: str) -> WorkerConfig:
    return WorkerConfig(
        redis_url=redis_url,
        database_url=sqlite_url,
        namespace=namespace,
        threads=2,
        max_retries=1,
        min_backoff_ms=50,
        max_backoff_ms=200,
    )


@pytest.fixture
def ledger(config: WorkerConfig) -> Iterator[Ledger]:
    opened = Ledger.connect(config.database_url)
    yield opened
    opened.close()


@pytest.fixture
def samples(ledger: Ledger) -> Samples:
    """This process's metrics and what its workers counted in the ledger, as its scrape
    reads them."""
    return Samples(StateCollector(recorded=lambda: ledger.recorded_counts(counts_owner())))


@pytest.fixture
def broker(config: WorkerConfig, ledger: Ledger) -> Iterator[RedisBroker]:
    built = build_broker(config)
    worker = dramatiq.Worker(built, worker_threads=2, worker_timeout=100)
    worker.start()
    yield built
    worker.stop(timeout=10_000)
    built.client.close()


def test_a_receipt_delivered_twice_is_counted_once(broker: RedisBroker, samples: Samples) -> None:
    # Given a receipt, and the same receipt delivered again (same receipt id)
    given = make_receipt("r-1", "m-1", "m-2")

    enqueue_receipt(broker, given)
    join(broker)
    enqueue_receipt(broker, given)
    join(broker)

    # Then its two events are counted once
    assert samples.delta("qlara_events_total", channel="sms", status="delivered") == 2
    assert samples.total_delta("qlara_duplicate_events_total") == 0


def test_an_undecodable_message_is_counted_as_a_dead_letter(
    broker: RedisBroker, ledger: Ledger, samples: Samples
) -> None:
    broker.enqueue(receipt_message("this is not a receipt"))

    wait_for(lambda: ledger.counts().dead_letters == 1)
    wait_for(lambda: samples.delta("qlara_dead_letters_total", reason="undecodable") == 1)
    assert samples.total_delta("qlara_dead_letters_total") == 1
