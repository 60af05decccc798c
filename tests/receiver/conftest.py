"""Fixtures for the receiver: configs, clients, a Redis of the test's own, queue readers."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import dramatiq
import pytest
import redis
from litestar.testing import TestClient

from qlara import Receipt
from qlara.wire import decode_argument
from receiver import ReceiverConfig, create_app

TOKEN = "s3cret-token_value"
READ_TOKEN = "read-token-value"
SEND_TOKEN = "send-token-value-0123"
QUEUE = "qlara-receipts"
ACTOR = "record_receipt"


def event_json(message_id: str = "m-1", status: str = "DELIVERED", **extra: Any) -> dict[str, Any]:
    """A shape-A (webhooks guide) event."""
    return {
        "messageId": message_id,
        "status": status,
        "timestamp": "2025-03-01T10:00:00Z",
        "channel": "sms",
        "phoneNumber": "+393901234567",
        **extra,
    }


def wait_for(condition: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    """Poll ``condition`` until it is truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def closed_redis_url() -> str:
    """A Redis URL nothing listens on."""
    return f"redis://127.0.0.1:{free_port()}/0"


#: Redis socket timeout and enqueue deadline of the tests' receivers (seconds).
SLOW_REDIS_TIMEOUT = 5.0
SLOW_ENQUEUE_DEADLINE = 10.0


@pytest.fixture
def config(tmp_path: Path, redis_url: str, namespace: str, sqlite_url: str) -> ReceiverConfig:
    """A config on the machine's Redis, a private namespace and data dir, a SQLite ledger.

    Redis gets generous time (SLOW_*): on a busy machine a first enqueue (connect, load the
    script, fsync) can pass the production 0.5 s deadline, and the event would go to the
    spool instead of the queue the test reads. Tests of the deadline set their own.
    """
    return ReceiverConfig(
        data_dir=tmp_path / "data",
        redis_url=redis_url,
        database_url=sqlite_url,
        webhook_token=TOKEN,
        read_token=READ_TOKEN,
        send_token=SEND_TOKEN,
        queue_name=QUEUE,
        actor_name=ACTOR,
        namespace=namespace,
        spool_drain_interval=0.05,
        redis_timeout=SLOW_REDIS_TIMEOUT,
        enqueue_deadline=SLOW_ENQUEUE_DEADLINE,
    )


@pytest.fixture
def make_client() -> Iterator[Callable[..., TestClient[Any]]]:
    """Start the app for a config (with overrides) under Litestar's TestClient."""
    with contextlib.ExitStack() as stack:

        def make(config: ReceiverConfig, **overrides: Any) -> TestClient[Any]:
            app = create_app(replace(config, **overrides))
            return stack.enter_context(TestClient(app, raise_server_exceptions=False))

        yield make


@pytest.fixture
def client(config: ReceiverConfig, make_client: Callable[..., TestClient[Any]]) -> TestClient[Any]:
    return make_client(config)


class QueueReader:
    """Reads what is waiting on a Dramatiq Redis queue, in queue order, without consuming."""

    def __init__(self, url: str, namespace: str, queue: str = QUEUE) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.ids_key = f"{namespace}:{queue}"
        self.msgs_key = f"{namespace}:{queue}.msgs"

    def messages(self) -> list[dramatiq.Message[Any]]:
        ids = self.client.lrange(self.ids_key, 0, -1)
        if not ids:
            return []
        data = self.client.hmget(self.msgs_key, ids)
        return [dramatiq.Message.decode(item) for item in data]

    def receipts(self) -> list[Receipt]:
        """Every receipt waiting, in queue order, whether its message carries one receipt (a
        spool line) or a batch of them (an enqueue)."""
        return [receipt for message in self.messages() for receipt in message_receipts(message)]

    def __len__(self) -> int:
        return int(self.client.llen(self.ids_key))


def message_receipts(message: dramatiq.Message[Any]) -> list[Receipt]:
    """The receipts a message carries: one receipt's JSON or a JSON array of receipts."""
    return decode_argument(message.args[0])


@pytest.fixture
def queue(config: ReceiverConfig) -> Iterator[QueueReader]:
    reader = QueueReader(config.redis_url, config.namespace)
    yield reader
    reader.client.close()


def spool_lines(config: ReceiverConfig) -> list[bytes]:
    """Every line of every spool segment (a segment the drainer deletes meanwhile has none)."""
    directory = config.spool_dir
    if not directory.is_dir():
        return []
    lines: list[bytes] = []
    for path in sorted(directory.glob("*.spool")):
        try:
            lines.extend(path.read_bytes().splitlines())
        except FileNotFoundError:
            continue
    return lines


def reject_records(config: ReceiverConfig) -> list[dict[str, Any]]:
    import json

    records = []
    for name in ("rejects.1.jsonl", "rejects.jsonl"):
        path = config.rejects_dir / name
        if path.exists():
            records += [json.loads(line) for line in path.read_bytes().splitlines()]
    return records


class HungRedis:
    """A TCP server that accepts connections and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"redis://127.0.0.1:{self.sock.getsockname()[1]}/0"
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def hung_redis() -> Iterator[HungRedis]:
    server = HungRedis()
    yield server
    server.close()
