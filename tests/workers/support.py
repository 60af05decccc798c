"""Helpers of the worker tests: receipts, waiting on a condition with a deadline, holding the
SQLite write lock, and ``run_worker`` in a child process."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from dramatiq.brokers.redis import RedisBroker

from qlara import DeliveryEvent, Receipt, Shape
from workers import QUEUE_NAME, WorkerConfig

REPO_ROOT = Path(__file__).resolve().parents[2]

#: Longest any test waits for a condition; a test that needs it has failed.
DEADLINE_S = 30.0


def wait_for(condition: Callable[[], object], *, timeout_s: float = DEADLINE_S) -> None:
    """Return once ``condition()`` is truthy; fail the test if the deadline passes first."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() >= deadline:
            pytest.fail(f"condition not met within {timeout_s} s: {condition}")
        time.sleep(0.02)


def make_receipt(receipt_id: str, *message_ids: str, status: str = "delivered") -> Receipt:
    """A receipt carrying one guide-shape event per message id."""
    events = tuple(
        DeliveryEvent(
            message_id=message_id,
            status=status,
            event_time=datetime(2025, 3, 1, 12, 0, tzinfo=UTC),
            shape=Shape.GUIDE,
            raw=json.dumps({"messageId": message_id, "status": status.upper()}).encode(),
            channel="sms",
            phone="+393901234567",
        )
        for message_id in message_ids
    )
    return Receipt(receipt_id=receipt_id, received_at=time.time(), events=events)


def join(broker: RedisBroker) -> None:
    """Wait until every message on the receipt queue (and its delay queue) is acknowledged."""
    broker.join(QUEUE_NAME, timeout=int(DEADLINE_S * 1000))


@contextmanager
def write_locked(database_url: str) -> Iterator[sqlite3.Connection]:
    """Hold SQLite's write lock on the ledger file (``BEGIN EXCLUSIVE``) until the block ends;
    writers wait out the busy timeout and fail with "database is locked"."""
    path = database_url.removeprefix("sqlite:///")
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        yield conn
        conn.execute("ROLLBACK")
    finally:
        conn.close()


def queued_messages(client: redis.Redis, namespace: str, queue_name: str = QUEUE_NAME) -> int:
    """Messages of ``queue_name`` not yet acknowledged (queued, delayed or in flight)."""
    return int(client.hlen(f"{namespace}:{queue_name}.msgs"))


#: Set in a :class:`WorkerProcess`'s environment: it SIGKILLs itself the moment its first
#: ledger transaction has committed, before anything after the commit runs.
DIE_AFTER_COMMIT_ENV = "QLARA_TEST_DIE_AFTER_COMMIT"


class WorkerProcess:
    """``workers.run_worker`` in a child process, as the sidecar runs it, with ``extra_env``
    in its environment."""

    def __init__(self, config: WorkerConfig, **extra_env: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **extra_env}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.workers.worker_process", json.dumps(asdict(config))],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=DEADLINE_S)

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    def output(self) -> str:
        out, _ = self.process.communicate(timeout=DEADLINE_S)
        return out.decode(errors="replace")


def refuse_receipts(database_url: str) -> None:
    """Make the SQLite ledger refuse every new receipt (a failure no retry can fix)."""
    with _sqlite(database_url) as conn:
        conn.execute(
            "CREATE TRIGGER refuse_receipts BEFORE INSERT ON receipts "
            "BEGIN SELECT RAISE(ABORT, 'receipts refused'); END"
        )


def accept_receipts(database_url: str) -> None:
    """Undo :func:`refuse_receipts`: the cause of the failures is gone."""
    with _sqlite(database_url) as conn:
        conn.execute("DROP TRIGGER refuse_receipts")


@contextmanager
def _sqlite(database_url: str) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()
