"""A worker process SIGKILLed between its ledger commit and anything after it loses no count:
the event counters a scrape shows are kept in the ledger's transaction, and the message the
broker hands out again is found recorded and counts nothing twice."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

import metrics
from ledger import Ledger
from tests.workers.support import (
    DIE_AFTER_COMMIT_ENV,
    WorkerProcess,
    make_receipt,
    queued_messages,
    wait_for,
)
from workers import WorkerConfig, enqueue_receipt
from workers.broker import RedisBroker


def scraped(directory: Path, ledger: Ledger) -> dict[tuple[str, tuple[str, ...]], float]:
    """What a scrape of the worker host's metrics directory shows: its processes' files and
    the counters its workers keep in the ledger."""
    owner = metrics.existing_counts_owner(directory)
    assert owner is not None
    state = metrics.StateCollector(recorded=lambda: ledger.recorded_counts(owner))
    text = metrics.render([state], directory=directory).decode()
    return {
        (sample.name, tuple(sample.labels.values())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_a_worker_killed_right_after_its_commit_loses_no_count(
    broker: RedisBroker,
    ledger: Ledger,
    config: WorkerConfig,
    spawn_worker: Callable[..., WorkerProcess],
    tmp_path: Path,
) -> None:
    # Dead workers are noticed fast: short heartbeat timeout, maintenance on every command.
    config = replace(config, heartbeat_timeout_ms=1500, maintenance_chance=1_000_000)
    directory = metrics.prepare_dir(tmp_path / "metrics")
    host = {metrics.MULTIPROC_ENV: str(directory), "QLARA_WORKER_SLOT": "1"}
    # Given a message of two delivered events, and a worker that dies (SIGKILL) the moment
    # the transaction recording them has committed
    enqueue_receipt(broker, make_receipt("r-1", "m-1", "m-2"))
    dying = spawn_worker(config, **host, **{DIE_AFTER_COMMIT_ENV: "1"})
    assert dying.process.wait(timeout=60) == -9
    assert ledger.counts().receipts == 1

    # When the worker starts again on the same host, and the broker hands the message out
    # again once the dead worker's heartbeat has lapsed
    spawn_worker(config, **host)
    wait_for(lambda: queued_messages(broker.client, broker.namespace) == 0)
    wait_for(lambda: scraped(directory, ledger)[("qlara_receipts_replayed_total", ())] == 1)

    # Then the events are counted once each: none lost with the dead worker, none twice
    found = scraped(directory, ledger)
    assert found[("qlara_events_total", ("sms", "delivered"))] == 2
    assert sum(v for (name, _), v in found.items() if name == "qlara_events_total") == 2
    assert found[("qlara_duplicate_events_total", ("sms",))] == 0
    assert ledger.counts().receipts == 1
