"""Messages a lost connection stranded in a live worker's acks set are recovered."""

from __future__ import annotations

from dataclasses import replace

import dramatiq
import pytest

from ledger import Ledger
from qlara import Receipt
from tests.conftest import OwnRedis
from tests.ledger.samples import event, receipt
from tests.workers.support import wait_for
from workers import QUEUE_NAME, WorkerConfig, build_broker, enqueue_receipt


@pytest.fixture
def reclaim_config(config: WorkerConfig, own_redis: OwnRedis) -> WorkerConfig:
    return replace(
        config,
        redis_url=own_redis.url,
        heartbeat_timeout_ms=1000,
        maintenance_chance=1_000_000,
    )


def test_a_message_fetched_while_the_connection_broke_is_processed_after_the_heartbeat_timeout(
    reclaim_config: WorkerConfig, own_redis: OwnRedis, ledger: Ledger
) -> None:
    # Given a queued receipt that Redis moved into this worker's acks set, with the reply
    # lost (what a broker killed mid-fetch leaves behind)
    broker = build_broker(reclaim_config)
    stranded_receipt: Receipt = receipt(event("m-stranded"))
    enqueue_receipt(broker, stranded_receipt)
    stranded = broker.do_fetch(QUEUE_NAME, 1)
    assert len(stranded) == 1
    old_id = broker.broker_id

    # When the broker dies and the worker's consumer sees the connection break
    consumer = broker.consume(QUEUE_NAME, prefetch=1, timeout=100)
    broker.client.connection_pool.disconnect()
    own_redis.kill()
    with pytest.raises(dramatiq.errors.ConnectionClosed):
        next(consumer)
    own_redis.start()

    # Then the worker carries on under a new id, and once the old id's heartbeat has
    # expired the stranded message is requeued and recorded
    assert broker.broker_id != old_id
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        wait_for(lambda: ledger.get_message("m-stranded") is not None)
    finally:
        worker.stop(timeout=5_000)
        broker.client.close()
    assert ledger.counts().events == 1
