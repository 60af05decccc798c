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


def test_a_fetch_that_timed_out_but_ran_on_the_server_is_processed_without_a_restart(
    reclaim_config: WorkerConfig,
    own_redis: OwnRedis,
    ledger: Ledger,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a worker broker whose Redis calls time out quickly, and a queued receipt
    monkeypatch.setattr("workers.broker.SOCKET_TIMEOUT_S", 0.3)
    broker = build_broker(reclaim_config)
    enqueue_receipt(broker, receipt(event("m-timed-out")))
    old_id = broker.broker_id
    consumer = broker.consume(QUEUE_NAME, prefetch=1, timeout=100)

    # When Redis stalls (SIGSTOP) while the consumer fetches: the client gives up, but the
    # fetch waits in the server's socket and moves the message into the old id's acks set
    # once Redis resumes
    own_redis.pause()
    try:
        with pytest.raises(dramatiq.errors.ConnectionClosed, match="Timeout"):
            next(consumer)
    finally:
        own_redis.resume()
    held = f"{broker.namespace}:__acks__.{old_id}.{QUEUE_NAME}"
    wait_for(lambda: broker.client.scard(held) == 1)  # the stranded message, as in production

    # Then the worker takes a fresh id, and the message is recorded once the old id's
    # heartbeat has expired, with nothing restarted
    assert broker.broker_id != old_id
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        wait_for(lambda: ledger.get_message("m-timed-out") is not None)
    finally:
        worker.stop(timeout=5_000)
        broker.client.close()
    assert ledger.counts().events == 1
