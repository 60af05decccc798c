"""A message that kills its worker process is dead-lettered after ``max_deliveries``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial

import pytest
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import SkipMessage

from ledger import Ledger
from tests.workers.support import (
    WorkerProcess,
    join,
    make_receipt,
    queued_messages,
    wait_for,
    write_locked,
)
from workers import DeliveryLimit, WorkerConfig, enqueue_receipt
from workers.broker import receipt_message
from workers.delivery_limit import COUNT_TTL_S, delivery_count_key


def _delivery_limit(broker: RedisBroker) -> DeliveryLimit:
    [middleware] = [m for m in broker.middleware if isinstance(m, DeliveryLimit)]
    return middleware


def _delivery_count(broker: RedisBroker, message_id: str) -> int:
    return int(broker.client.get(delivery_count_key(broker.namespace, message_id)) or 0)


def _delivery_count_is(broker: RedisBroker, message_id: str, expected: int) -> bool:
    return _delivery_count(broker, message_id) == expected


def test_deliveries_that_never_finish_are_counted_in_redis_until_the_limit(
    broker: RedisBroker, ledger: Ledger, config: WorkerConfig
) -> None:
    # Each before_process_message without its after_ hook is a worker that died mid-message;
    # the count lives in Redis, so every process that picks the message up sees it.
    limit = _delivery_limit(broker)
    payload = make_receipt("r-killer", "m-1").encode().decode()
    message = MessageProxy(receipt_message(payload, message_id="r-killer"))

    for delivery in range(1, config.max_deliveries + 1):
        limit.before_process_message(broker, message)
        assert _delivery_count(broker, "r-killer") == delivery

    with pytest.raises(SkipMessage):
        limit.before_process_message(broker, message)

    [letter] = ledger.dead_letters()
    assert letter.reason == f"killed its worker {config.max_deliveries} times"
    assert letter.attempts == config.max_deliveries
    assert letter.payload == payload
    assert not message.failed
    assert _delivery_count(broker, "r-killer") == 0


def test_counting_survives_redis_forgetting_its_scripts_and_renews_the_expiry(
    broker: RedisBroker,
) -> None:
    # A Redis restart (or SCRIPT FLUSH) forgets the counting script: the next delivery
    # loads it again and still counts.
    limit = _delivery_limit(broker)
    message = MessageProxy(receipt_message("{}", message_id="r-flushed"))
    key = delivery_count_key(broker.namespace, "r-flushed")

    limit.before_process_message(broker, message)
    broker.client.script_flush()
    broker.client.persist(key)
    limit.before_process_message(broker, message)

    assert _delivery_count(broker, "r-flushed") == 2
    assert 0 < broker.client.ttl(key) <= COUNT_TTL_S


def test_a_delivery_that_finishes_resets_the_count(
    broker: RedisBroker, ledger: Ledger, config: WorkerConfig
) -> None:
    limit = _delivery_limit(broker)
    message = MessageProxy(receipt_message("{}", message_id="r-survivor"))

    for _ in range(config.max_deliveries * 2):
        limit.before_process_message(broker, message)
        limit.after_process_message(broker, message, exception=RuntimeError("retried"))

    assert _delivery_count(broker, "r-survivor") == 0
    assert ledger.dead_letters() == []


def test_a_message_that_kills_its_worker_process_is_dead_lettered_and_stops_looping(
    broker: RedisBroker,
    ledger: Ledger,
    config: WorkerConfig,
    spawn_worker: Callable[[WorkerConfig], WorkerProcess],
) -> None:
    # Dead workers are noticed fast: short heartbeat timeout, maintenance on every command.
    config = replace(config, heartbeat_timeout_ms=1500, maintenance_chance=1_000_000)
    # Given a message whose processing blocks (the ledger is write-locked by this test)
    with write_locked(config.database_url):
        enqueue_receipt(broker, make_receipt("r-killer", "m-1"))
        # When max_deliveries worker processes in turn are killed while processing it
        for delivery in range(1, config.max_deliveries + 1):
            worker = spawn_worker(config)
            wait_for(partial(_delivery_count_is, broker, "r-killer", delivery))
            worker.kill()
    # Then the next worker dead-letters it instead of processing it again
    survivor = spawn_worker(config)
    wait_for(lambda: len(ledger.dead_letters()) == 1)
    join(broker)

    [letter] = ledger.dead_letters()
    assert letter.reason == f"killed its worker {config.max_deliveries} times"
    assert letter.receipt_id == "r-killer"
    assert ledger.counts().receipts == 0
    assert queued_messages(broker.client, broker.namespace) == 0
    assert _delivery_count(broker, "r-killer") == 0
    survivor.terminate()
    assert survivor.process.wait(timeout=config.shutdown_timeout_s + 5) == 0


def test_succeeded_counts_are_forgotten_in_one_batch_and_failed_ones_at_once(
    broker: RedisBroker, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit = _delivery_limit(broker)
    monkeypatch.setattr(DeliveryLimit, "FORGET_BATCH", 3)
    monkeypatch.setattr(DeliveryLimit, "FORGET_AFTER_S", 3600.0)
    ok = [MessageProxy(receipt_message("{}", message_id=f"r-ok-{i}")) for i in range(3)]
    failed = MessageProxy(receipt_message("{}", message_id="r-failed"))
    for message in [*ok, failed]:
        limit.before_process_message(broker, message)

    # A failure is forgotten at once: its retry comes back under the same id
    limit.after_process_message(broker, failed, exception=RuntimeError("retried"))
    assert _delivery_count(broker, "r-failed") == 0
    # Successes wait for the batch...
    limit.after_process_message(broker, ok[0])
    limit.after_process_message(broker, ok[1])
    assert [_delivery_count(broker, f"r-ok-{i}") for i in range(3)] == [1, 1, 1]
    # ...and go together when it is full
    limit.after_process_message(broker, ok[2])
    assert [_delivery_count(broker, f"r-ok-{i}") for i in range(3)] == [0, 0, 0]


def test_succeeded_counts_still_waiting_are_forgotten_when_the_worker_stops(
    broker: RedisBroker, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit = _delivery_limit(broker)
    monkeypatch.setattr(DeliveryLimit, "FORGET_AFTER_S", 3600.0)
    message = MessageProxy(receipt_message("{}", message_id="r-last"))
    limit.before_process_message(broker, message)
    limit.after_process_message(broker, message)
    assert _delivery_count(broker, "r-last") == 1

    limit.after_worker_shutdown(broker, None)

    assert _delivery_count(broker, "r-last") == 0
