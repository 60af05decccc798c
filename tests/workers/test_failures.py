"""Transient failures are retried; messages that will not succeed end in the dead-letter table
with their reason; redrive replays them once their cause is gone."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

import dramatiq
import pytest
from dramatiq.brokers.redis import RedisBroker

from ledger import Ledger, LedgerRefused, LedgerUnavailable
from qlara import Receipt
from qlara.wire import join_argument
from tests.workers.support import (
    accept_receipts,
    join,
    make_receipt,
    queued_messages,
    refuse_receipts,
    wait_for,
    write_locked,
)
from workers import (
    QUEUE_NAME,
    LedgerConnection,
    RedriveResult,
    WorkerConfig,
    build_broker,
    enqueue_receipt,
    redrive,
)
from workers.broker import receipt_message, retry_when

DELAY_QUEUE = f"{QUEUE_NAME}.DQ"


def _open_ledger(broker: RedisBroker) -> None:
    """Open the workers' ledger now, as worker boot does, so that a lock taken afterwards
    blocks recording rather than the boot-time migration."""
    [connection] = [m for m in broker.middleware if isinstance(m, LedgerConnection)]
    connection.open()


def test_a_locked_ledger_is_retried_until_the_receipt_is_recorded(
    config: WorkerConfig, ledger: Ledger, namespace: str
) -> None:
    # Backoffs long enough to see the retry waiting on the delay queue, and retries enough
    # that a busy machine, looking late, finds it there on a later round.
    broker = build_broker(
        replace(config, min_backoff_ms=1000, max_backoff_ms=2000, max_retries=100)
    )
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    _open_ledger(broker)
    try:
        # Given a ledger another connection holds the write lock on
        with write_locked(config.database_url):
            enqueue_receipt(broker, make_receipt("r-locked", "m-1"))
            worker.start()
            # When the first attempt fails with "database is locked" and is scheduled again
            wait_for(lambda: queued_messages(broker.client, namespace, DELAY_QUEUE) == 1)
        # Then, the lock released, the retry records the receipt once
        join(broker)
    finally:
        worker.stop(timeout=10_000)
        broker.client.close()

    counts = ledger.counts()
    assert (counts.receipts, counts.events, counts.duplicates) == (1, 1, 0)
    assert counts.dead_letters == 0


def test_an_undecodable_payload_is_dead_lettered_at_once_with_its_reason(
    broker: RedisBroker, ledger: Ledger, start_worker: Callable[[], dramatiq.Worker]
) -> None:
    broker.enqueue(receipt_message("{not json", message_id="r-garbled"))
    start_worker()
    join(broker)

    [letter] = ledger.dead_letters()
    assert letter.receipt_id == "r-garbled"
    assert letter.payload == "{not json"
    assert letter.reason.startswith("UndecodableReceipt: JSON is malformed")
    assert letter.attempts == 1
    assert ledger.counts().receipts == 0


def test_a_dead_letter_reason_names_where_the_payload_is_wrong_not_what_it_holds(
    broker: RedisBroker, ledger: Ledger, start_worker: Callable[[], dramatiq.Worker]
) -> None:
    payload = '{"receipt_id": "r-1", "received_at": "+393901234567"}'
    broker.enqueue(receipt_message(payload, message_id="r-1"))
    start_worker()
    join(broker)

    [letter] = ledger.dead_letters()
    assert letter.reason == "UndecodableReceipt: Expected `float`, got `str` - at `$.received_at`"
    assert "3901234567" not in letter.reason


def test_a_message_that_keeps_failing_is_dead_lettered_after_its_retries(
    broker: RedisBroker,
    ledger: Ledger,
    config: WorkerConfig,
    start_worker: Callable[[], dramatiq.Worker],
) -> None:
    # Given a ledger that refuses every receipt
    refuse_receipts(config.database_url)
    receipt = make_receipt("r-refused", "m-1")
    # When a receipt is enqueued
    enqueue_receipt(broker, receipt)
    start_worker()
    join(broker)
    # Then it was tried once and retried max_retries times, then dead-lettered as sent
    [letter] = ledger.dead_letters()
    assert letter.attempts == config.max_retries + 1
    assert letter.reason.startswith("IntegrityError: ")
    assert "receipts refused" in letter.reason
    assert letter.receipt_id == "r-refused"
    assert Receipt.decode(letter.payload) == receipt
    assert letter.redriven_at is None


def test_a_dead_letter_whose_cause_is_gone_is_recorded_after_redrive(
    broker: RedisBroker,
    ledger: Ledger,
    config: WorkerConfig,
    start_worker: Callable[[], dramatiq.Worker],
) -> None:
    # Given a receipt dead-lettered because the ledger refused it
    refuse_receipts(config.database_url)
    enqueue_receipt(broker, make_receipt("r-redrive", "m-1", "m-2"))
    start_worker()
    join(broker)
    assert len(ledger.dead_letters()) == 1
    # When the cause is removed and the dead letters are redriven
    accept_receipts(config.database_url)
    result = redrive(config)
    join(broker)
    # Then the receipt is recorded and its dead letter marked redriven
    assert result == RedriveResult(redriven=1, remaining=0)
    counts = ledger.counts()
    assert (counts.receipts, counts.events) == (1, 2)
    assert ledger.dead_letters() == []
    [letter] = ledger.dead_letters(include_redriven=True)
    assert letter.redriven_at is not None


def test_redriving_the_same_receipt_twice_records_it_once(
    broker: RedisBroker,
    ledger: Ledger,
    config: WorkerConfig,
    start_worker: Callable[[], dramatiq.Worker],
) -> None:
    payload = make_receipt("r-dup", "m-1").encode().decode()
    for _ in range(2):
        ledger.add_dead_letter(payload=payload, reason="Boom: test", attempts=1, receipt_id="r-dup")

    assert redrive(config) == RedriveResult(redriven=2, remaining=0)
    start_worker()
    join(broker)

    counts = ledger.counts()
    assert (counts.receipts, counts.events, counts.duplicates) == (1, 1, 0)
    assert redrive(config) == RedriveResult(redriven=0, remaining=0)


def test_redrive_takes_the_oldest_dead_letters_first_up_to_its_limit(
    ledger: Ledger, config: WorkerConfig, namespace: str, broker: RedisBroker
) -> None:
    ids = [
        ledger.add_dead_letter(
            payload=make_receipt(f"r-{n}", "m-1").encode().decode(),
            reason="Boom: test",
            attempts=1,
            receipt_id=f"r-{n}",
        )
        for n in range(3)
    ]

    assert redrive(config, limit=2) == RedriveResult(redriven=2, remaining=1)

    assert [letter.id for letter in ledger.dead_letters()] == ids[2:]
    assert queued_messages(broker.client, namespace) == 2


def test_a_dead_letter_the_ledger_cannot_take_is_parked_not_lost(
    config: WorkerConfig, ledger: Ledger, namespace: str
) -> None:
    # Parking delay (max_backoff_ms) long enough to see the parked copy on the delay queue.
    broker = build_broker(replace(config, max_backoff_ms=2000))
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    _open_ledger(broker)
    try:
        # Given a ledger locked while a permanent failure wants its dead letter written
        with write_locked(config.database_url):
            broker.enqueue(receipt_message("{not json", message_id="r-parked"))
            worker.start()
            # When writing the dead letter fails, the message waits on the delay queue
            wait_for(lambda: queued_messages(broker.client, namespace, DELAY_QUEUE) == 1)
        # Then, the ledger back, the dead letter is written once
        join(broker)
    finally:
        worker.stop(timeout=10_000)
        broker.client.close()

    [letter] = ledger.dead_letters()
    assert letter.receipt_id == "r-parked"
    assert letter.reason.startswith("UndecodableReceipt")


def test_no_log_line_carries_a_phone_number_from_a_failing_receipt(
    broker: RedisBroker,
    ledger: Ledger,
    config: WorkerConfig,
    start_worker: Callable[[], dramatiq.Worker],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a receipt with a phone number that fails (and is logged by Dramatiq) every time
    refuse_receipts(config.database_url)
    caplog.set_level(logging.DEBUG)
    enqueue_receipt(broker, make_receipt("r-private", "m-1"))
    start_worker()
    join(broker)
    # Then Dramatiq's lines name the message by id, never with its payload
    assert "Failed to process message record_receipt(message_id=r-private)" in caplog.text
    assert "3901234567" not in caplog.text


def test_a_dead_lettered_batch_keeps_its_payload_and_is_recorded_after_redrive(
    broker: RedisBroker,
    ledger: Ledger,
    config: WorkerConfig,
    start_worker: Callable[[], dramatiq.Worker],
) -> None:
    # Given a batch of two receipts dead-lettered because the ledger refused it
    refuse_receipts(config.database_url)
    batch = [make_receipt("r-b1", "m-1"), make_receipt("r-b2", "m-2")]
    payload = join_argument([r.encode() for r in batch])
    broker.enqueue(receipt_message(payload, message_id="batch-1"))
    start_worker()
    join(broker)
    [letter] = ledger.dead_letters()
    assert letter.payload == payload
    assert letter.receipt_id == "batch-1"

    # When the cause is removed and the dead letters are redriven
    accept_receipts(config.database_url)
    assert redrive(config) == RedriveResult(redriven=1, remaining=0)
    join(broker)

    # Then both receipts are recorded, once
    counts = ledger.counts()
    assert (counts.receipts, counts.events, counts.duplicates) == (2, 2, 0)


def test_an_unavailable_ledger_never_spends_a_messages_retries() -> None:
    retry = retry_when(max_retries=3)
    # An outage is retried however long it lasts: the event is not at fault
    assert all(retry(n, LedgerUnavailable("down")) for n in (0, 3, 4, 100, 10_000))
    # Anything else is retried max_retries times, then the message is a dead letter
    assert [retry(n, RuntimeError("bad")) for n in range(5)] == [True, True, True, False, False]
    assert retry(3, LedgerRefused("value")) is False
