"""Receipts enqueued on the broker are recorded in the ledger by a real worker."""

from __future__ import annotations

import logging
from collections.abc import Callable

import dramatiq
import pytest
import structlog
import structlog.testing
from dramatiq.brokers.redis import RedisBroker

from ledger import Ledger, RecordResult
from qlara import Receipt
from qlara.wire import join_argument
from tests.workers.support import join, make_receipt, queued_messages
from workers import ACTOR_NAME, QUEUE_NAME, WorkerConfig, build_broker, enqueue_receipt
from workers.broker import receipt_message
from workers.connection import LedgerConnection
from workers.delivery_limit import delivery_count_key
from workers.recorder import ReceiptRecorder


def test_an_enqueued_receipt_is_recorded_in_the_ledger(
    broker: RedisBroker, ledger: Ledger, start_worker: Callable[[], dramatiq.Worker]
) -> None:
    # Given a worker on the queue
    start_worker()
    # When a receipt with two events is enqueued
    enqueue_receipt(broker, make_receipt("r-1", "m-1", "m-2"))
    join(broker)
    # Then both events are in the ledger and nothing is left on the queue
    counts = ledger.counts()
    assert (counts.receipts, counts.events, counts.messages) == (1, 2, 2)
    assert counts.dead_letters == 0
    assert queued_messages(broker.client, broker.namespace) == 0


def test_the_message_follows_the_wire_format_the_receiver_uses(
    broker: RedisBroker, namespace: str
) -> None:
    receipt = make_receipt("r-wire", "m-1")
    enqueue_receipt(broker, receipt)

    [raw] = broker.client.hvals(f"{namespace}:{QUEUE_NAME}.msgs")
    assert isinstance(raw, bytes)
    message = dramatiq.Message.decode(raw)
    assert (message.queue_name, message.actor_name) == (QUEUE_NAME, ACTOR_NAME)
    assert message.message_id == receipt.receipt_id
    assert message.args == (receipt.encode().decode(),)


#: A message as a receiver wrote it into Redis before the wire format had a module of its
#: own (the JSON array of two receipts): the bytes a queue holds across an upgrade.
QUEUED_BEFORE_UPGRADE = (
    b'{"queue_name":"qlara-events","actor_name":"record_receipt","args":["[{\\"receipt_id\\"'
    b':\\"r-1\\",\\"received_at\\":1740823200.25,\\"events\\":[{\\"message_id\\":\\"m-1\\",'
    b'\\"status\\":\\"delivered\\",\\"event_time\\":\\"2025-03-01T10:00:00Z\\",\\"shape\\":\\"A\\",'
    b'\\"raw\\":\\"eyJtZXNzYWdlSWQiOiJtLTEifQ==\\",\\"channel\\":\\"sms\\",'
    b'\\"customer_message_id\\":null,\\"phone\\":\\"+393901234567\\",\\"error\\":null,'
    b'\\"status_code\\":null,\\"part\\":1,\\"total_parts\\":1,\\"price\\":null,'
    b'\\"naive_time\\":false,\\"time_from_receipt\\":false,\\"source\\":\\"webhook\\"}],'
    b'\\"inbound\\":[]},{\\"receipt_id\\":\\"r-2\\",\\"received_at\\":1740823201.5,'
    b'\\"events\\":[],\\"inbound\\":[{\\"inbound_id\\":\\"i-1\\",\\"event_time\\":'
    b'\\"2025-03-01T10:00:05Z\\",\\"raw\\":\\"eyJ0ZXh0IjoiaGkifQ==\\",\\"channel\\":\\"sms\\",'
    b'\\"source\\":null,\\"destination\\":null,\\"text\\":\\"hi\\",\\"message_type\\":null,'
    b'\\"naive_time\\":false,\\"time_from_receipt\\":false}]}]"],"kwargs":{},'
    b'"options":{"redis_message_id":"6c1b7a51-2f0e-4a8e-9d3c-0b8f1e2a7c44"},'
    b'"message_id":"0f4c2d8e9b7a4e1f8a6b5c3d2e1f0a9b","message_timestamp":1740823202000}'
)


def test_a_message_queued_before_an_upgrade_is_recorded(
    broker: RedisBroker, ledger: Ledger, start_worker: Callable[[], dramatiq.Worker]
) -> None:
    # Given the message in the queue, where Dramatiq's dispatch script puts it
    queue = f"{broker.namespace}:{QUEUE_NAME}"
    broker.client.hset(
        f"{queue}.msgs", "6c1b7a51-2f0e-4a8e-9d3c-0b8f1e2a7c44", QUEUED_BEFORE_UPGRADE
    )
    broker.client.rpush(queue, "6c1b7a51-2f0e-4a8e-9d3c-0b8f1e2a7c44")
    # When a worker of this version takes it
    start_worker()
    join(broker)
    # Then both receipts are recorded, and nothing is dead-lettered
    counts = ledger.counts()
    assert (counts.receipts, counts.events, counts.inbound, counts.dead_letters) == (2, 1, 1, 0)
    assert queued_messages(broker.client, broker.namespace) == 0


def test_the_same_receipt_enqueued_twice_is_recorded_once(
    broker: RedisBroker, ledger: Ledger, start_worker: Callable[[], dramatiq.Worker]
) -> None:
    receipt = make_receipt("r-twice", "m-1")
    enqueue_receipt(broker, receipt)
    enqueue_receipt(broker, receipt)

    start_worker()
    join(broker)

    counts = ledger.counts()
    assert (counts.receipts, counts.events) == (1, 1)
    assert counts.duplicates == 0


def test_a_resent_event_in_a_new_receipt_only_raises_the_duplicate_count(
    broker: RedisBroker, ledger: Ledger, start_worker: Callable[[], dramatiq.Worker]
) -> None:
    start_worker()
    enqueue_receipt(broker, make_receipt("r-a", "m-1"))
    join(broker)
    enqueue_receipt(broker, make_receipt("r-b", "m-1"))
    join(broker)

    counts = ledger.counts()
    assert (counts.receipts, counts.events, counts.duplicates) == (2, 1, 1)


def test_a_recorded_message_leaves_no_delivery_count_behind(
    broker: RedisBroker, namespace: str, start_worker: Callable[[], dramatiq.Worker]
) -> None:
    worker = start_worker()
    enqueue_receipt(broker, make_receipt("r-count", "m-1"))
    join(broker)
    # counts of succeeded messages are deleted in batches, the last one when the worker stops
    worker.stop(timeout=10_000)

    assert broker.client.exists(delivery_count_key(namespace, "r-count")) == 0


def test_on_recorded_hooks_see_what_the_ledger_made_of_each_receipt(
    config: WorkerConfig, ledger: Ledger
) -> None:
    seen: list[tuple[str, bool, int]] = []

    def hook(receipt: Receipt, result: RecordResult) -> None:
        seen.append((receipt.receipt_id, result.already_recorded, len(result.new_events)))

    broker = build_broker(config, on_recorded=[hook])
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        enqueue_receipt(broker, make_receipt("r-hook", "m-1", "m-2"))
        join(broker)
        enqueue_receipt(broker, make_receipt("r-hook", "m-1", "m-2"))
        join(broker)
    finally:
        worker.stop(timeout=10_000)
        broker.client.close()

    assert seen == [("r-hook", False, 2), ("r-hook", True, 0)]


def test_a_failing_hook_does_not_fail_the_message(config: WorkerConfig, ledger: Ledger) -> None:
    def hook(receipt: Receipt, result: RecordResult) -> None:
        raise RuntimeError("hook bug")

    broker = build_broker(config, on_recorded=[hook])
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        enqueue_receipt(broker, make_receipt("r-bad-hook", "m-1"))
        join(broker)
    finally:
        worker.stop(timeout=10_000)
        broker.client.close()

    counts = ledger.counts()
    assert (counts.receipts, counts.dead_letters) == (1, 0)


def _batch(*receipts: Receipt) -> str:
    return join_argument([r.encode() for r in receipts])


def test_a_batch_message_records_each_of_its_receipts_once(
    broker: RedisBroker, ledger: Ledger, start_worker: Callable[[], dramatiq.Worker]
) -> None:
    # Given a receipt recorded before, and a message carrying it again among two new ones
    seen = make_receipt("r-seen", "m-1")
    enqueue_receipt(broker, seen)
    start_worker()
    join(broker)

    # When the batch is processed
    broker.enqueue(
        receipt_message(_batch(make_receipt("r-a", "m-2"), seen, make_receipt("r-b", "m-3")))
    )
    join(broker)

    # Then the new receipts are recorded and the old one is not counted again
    counts = ledger.counts()
    assert (counts.receipts, counts.events, counts.duplicates) == (3, 3, 0)
    assert queued_messages(broker.client, broker.namespace) == 0


def test_the_hooks_run_once_per_receipt_of_a_batch_with_its_own_result(
    config: WorkerConfig, ledger: Ledger
) -> None:
    # Given a recorder with a hook, and a batch whose second receipt repeats the first
    seen: list[tuple[str, RecordResult]] = []
    recorder = ReceiptRecorder(
        LedgerConnection(config.database_url),
        [lambda r, result: seen.append((r.receipt_id, result))],
    )
    first = make_receipt("r-1", "m-1")

    # When the batch is recorded
    results = recorder(_batch(first, make_receipt("r-2", "m-1"), first))

    # Then each receipt got its own result, in order
    assert [(receipt_id, r.already_recorded) for receipt_id, r in seen] == [
        ("r-1", False),
        ("r-2", False),
        ("r-1", True),
    ]
    assert [r for _, r in seen] == results
    assert [len(r.new_events) for r in results] == [1, 0, 0]
    assert [len(r.duplicate_events) for r in results] == [0, 1, 0]


@pytest.mark.parametrize(("level", "logged"), [(logging.DEBUG, 2), (logging.INFO, 0)])
def test_each_recorded_receipt_is_logged_at_debug_level_only(
    config: WorkerConfig, ledger: Ledger, level: int, logged: int
) -> None:
    recorder = ReceiptRecorder(LedgerConnection(config.database_url))
    named = logging.getLogger("workers.recorder")
    before = named.level
    named.setLevel(level)
    try:
        with structlog.testing.capture_logs() as entries:
            recorder(_batch(make_receipt("r-1", "m-1"), make_receipt("r-2", "m-2")))
    finally:
        named.setLevel(before)

    recorded = [e for e in entries if e["event"] == "receipt recorded"]
    assert [e["receipt_id"] for e in recorded] == ["r-1", "r-2"][:logged]
