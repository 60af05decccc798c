"""Workers purge ledger records older than the retention period, once per interval."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import func, select

from ledger import Ledger
from ledger.engine import build_engine
from ledger.schema import event_minutes
from qlara import Receipt
from tests.workers.support import make_receipt, wait_for
from workers import Retention, WorkerConfig, build_broker

DAY_S = 86_400.0


def _retention(broker: RedisBroker) -> Retention:
    [middleware] = [m for m in broker.middleware if isinstance(m, Retention)]
    return middleware


def _aged(receipt: Receipt, days: float) -> Receipt:
    return Receipt(
        receipt_id=receipt.receipt_id,
        received_at=time.time() - days * DAY_S,
        events=receipt.events,
    )


def test_a_retention_round_purges_events_older_than_the_retention_period(
    broker: RedisBroker, ledger: Ledger, config: WorkerConfig
) -> None:
    # Given one event received before the retention period and one inside it
    ledger.record(_aged(make_receipt("r-old", "m-old"), days=config.retention_days + 1))
    ledger.record(_aged(make_receipt("r-new", "m-new"), days=config.retention_days - 1))
    # When a retention round runs
    counts = _retention(broker).purge_once(broker)
    # Then only the old one is gone
    assert counts is not None
    assert (counts["events"], counts["messages"]) == (1, 1)
    assert ledger.get_message("m-old") is None
    assert ledger.get_message("m-new") is not None


def test_only_one_worker_process_purges_per_interval(
    broker: RedisBroker, ledger: Ledger, config: WorkerConfig
) -> None:
    # Another process's broker: its own Retention, the same Redis namespace.
    other = build_broker(config)
    try:
        assert _retention(broker).purge_once(broker) is not None
        assert _retention(other).purge_once(other) is None
    finally:
        other.client.close()


def test_a_worker_purges_soon_after_boot_and_stops_purging_at_shutdown(
    config: WorkerConfig, ledger: Ledger
) -> None:
    ledger.record(_aged(make_receipt("r-old", "m-old"), days=config.retention_days + 1))
    broker = build_broker(replace(config, purge_interval_s=0.2))
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        wait_for(lambda: ledger.counts().events == 0)
    finally:
        worker.stop(timeout=10_000)
        broker.client.close()

    assert not [t for t in threading.enumerate() if t.name == "qlara-retention"]


def test_a_worker_compacts_the_per_minute_counts_of_passed_minutes(
    config: WorkerConfig, ledger: Ledger
) -> None:
    # Five transactions, each adding a row for the same minute, ten minutes ago
    minute = (time.time() // 60 - 10) * 60
    for n in range(5):
        fresh = make_receipt(f"r-{n}", f"m-{n}")
        ledger.record(
            Receipt(receipt_id=fresh.receipt_id, received_at=minute + n, events=fresh.events)
        )
    assert _minute_rows(config) == 5
    # A short purge interval makes the upkeep thread's first round come at once.
    broker = build_broker(replace(config, purge_interval_s=0.2))
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        wait_for(lambda: _minute_rows(config) == 1)
    finally:
        worker.stop(timeout=10_000)
        broker.client.close()

    assert ledger.counts().events == 5


def _minute_rows(config: WorkerConfig) -> int:
    engine = build_engine(config.database_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(event_minutes)).scalar_one())
    finally:
        engine.dispose()
