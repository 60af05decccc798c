"""``run_worker``: one worker process that stops cleanly on a signal."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from dramatiq.brokers.redis import RedisBroker

from ledger import Ledger
from tests.workers.support import (
    WorkerProcess,
    join,
    make_receipt,
    queued_messages,
    wait_for,
    write_locked,
)
from workers import EXIT_BOOT_FAILED, EXIT_OK, WorkerConfig, enqueue_receipt, run_worker
from workers.delivery_limit import delivery_count_key

#: Time a child process may take to import and start, on top of what is measured.
STARTUP_ALLOWANCE_S = 10.0


def test_a_worker_process_records_receipts_and_stops_on_sigterm(
    broker: RedisBroker,
    ledger: Ledger,
    config: WorkerConfig,
    spawn_worker: Callable[[WorkerConfig], WorkerProcess],
) -> None:
    worker = spawn_worker(config)
    for n in range(5):
        enqueue_receipt(broker, make_receipt(f"r-{n}", f"m-{n}"))
    join(broker)

    worker.terminate()

    # Exact, not timed: the worker says whether it stopped within its own budget.
    assert worker.process.wait(timeout=config.shutdown_timeout_s + STARTUP_ALLOWANCE_S) == EXIT_OK
    assert ledger.counts().receipts == 5
    output = worker.output()
    assert "worker started" in output
    assert "worker stopped" in output
    assert "before in-flight work finished" not in output
    # what the start-up built is left out of the garbage collector's full collections
    frozen = re.search(r"frozen_objects\W+(\d+)", output)
    assert frozen is not None, output
    assert int(frozen.group(1)) > 10_000


def test_sigterm_lets_the_in_flight_message_finish_within_the_shutdown_timeout(
    broker: RedisBroker,
    ledger: Ledger,
    config: WorkerConfig,
    spawn_worker: Callable[[WorkerConfig], WorkerProcess],
) -> None:
    config = replace(config, shutdown_timeout_s=4.0)
    worker = spawn_worker(config)
    with write_locked(config.database_url):
        # Given a worker in the middle of recording a receipt (blocked on the ledger's lock)
        enqueue_receipt(broker, make_receipt("r-in-flight", "m-1"))
        count_key = delivery_count_key(broker.namespace, "r-in-flight")
        wait_for(lambda: broker.client.exists(count_key))
        # When it is told to stop
        worker.terminate()
    # Then it finishes that message, acknowledges it and says it stopped within its budget
    assert worker.process.wait(timeout=config.shutdown_timeout_s + STARTUP_ALLOWANCE_S) == EXIT_OK
    assert ledger.counts().receipts == 1
    assert queued_messages(broker.client, broker.namespace) == 0
    assert "before in-flight work finished" not in worker.output()


def test_a_worker_that_cannot_reach_redis_exits_with_the_boot_failure_code(
    config: WorkerConfig,
) -> None:
    unreachable = replace(config, redis_url="redis://127.0.0.1:1/0")

    assert run_worker(unreachable) == EXIT_BOOT_FAILED


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("threads", 0),
        ("max_deliveries", 0),
        ("max_retries", -1),
        ("maintenance_chance", 1_000_001),
        ("shutdown_timeout_s", 0.0),
        ("namespace", ""),
    ],
)
def test_a_config_out_of_range_is_refused_naming_the_field(
    config: WorkerConfig, field: str, value: Any
) -> None:
    with pytest.raises(ValueError, match=field):
        replace(config, **{field: value})
