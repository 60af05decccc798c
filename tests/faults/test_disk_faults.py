"""A disk fills up under the spool, the broker or the ledger while webhooks arrive: nothing
answered 200 is lost, what cannot be made durable is refused with a 503 at once, and once
the disk is freed everything acknowledged is recorded exactly once, without restarting
anything of the sidecar's.

Each disk is a small tmpfs mounted for the test (root is needed: CI runs as root; elsewhere
the tests skip saying so)."""

from __future__ import annotations

import errno
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import httpx
import pytest

from simulator import plan_traffic
from tests.conftest import OwnRedis, missing_service
from tests.e2e.sidecar_process import PostResult, Sidecar, post_all, wait_for
from tests.e2e.test_sends import metric
from tests.faults.conftest import assert_all_recorded_without_restarts

pytestmark = pytest.mark.e2e

#: How long the ledger may take to hold everything once the disk is freed.
SETTLE_S = 120
#: What Qlara waits for an answer; a refusal must come well within it.
QLARA_TIMEOUT_S = 5.0


class Tmpfs:
    """A tmpfs of ``size_kib`` mounted at ``path``; :meth:`fill` takes every free byte,
    :meth:`free` gives them back."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._filler = path / ".filler"

    def fill(self) -> None:
        chunk = b"\0" * 4096
        # Unbuffered: a write that failed leaves nothing behind for close() to retry
        with self._filler.open("ab", buffering=0) as out:
            stopped = _write_until_refused(out, chunk)
        assert stopped.errno == errno.ENOSPC, stopped
        # The disk is full now: not even one more block fits
        probe = (self.path / ".probe").open("wb", buffering=0)
        with probe, pytest.raises(OSError, match="No space left"):
            probe.write(chunk)

    def free(self) -> None:
        self._filler.unlink(missing_ok=True)
        (self.path / ".probe").unlink(missing_ok=True)


def _write_until_refused(out: BinaryIO, chunk: bytes) -> OSError:
    while True:
        try:
            out.write(chunk)
        except OSError as exc:
            return exc


@pytest.fixture
def tmpfs() -> Iterator[Callable[[Path, int], Tmpfs]]:
    mounted: list[Path] = []

    def mount(path: Path, size_kib: int) -> Tmpfs:
        path.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k,mode=0700", "tmpfs", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            missing_service(f"cannot mount a tmpfs to fill up (root needed): {done.stderr.strip()}")
        mounted.append(path)
        return Tmpfs(path)

    yield mount
    for path in reversed(mounted):
        subprocess.run(["umount", "-l", str(path)], check=False)


def refused_at_once(url: str, bodies: list[bytes]) -> list[float]:
    """POST each body in turn; every one must be answered 503 with a Retry-After before
    Qlara would give up waiting. Returns the seconds each answer took."""
    took = []
    with httpx.Client(timeout=QLARA_TIMEOUT_S) as client:
        for body in bodies:
            started = time.monotonic()
            answer = client.post(url, content=body, headers={"Content-Type": "application/json"})
            took.append(time.monotonic() - started)
            assert answer.status_code == 503, answer.text
            assert answer.headers["retry-after"] == "5"
            assert answer.json()["status"] == "unavailable"
    return took


def traffic(seed: int) -> tuple[list[bytes], list[bytes], list[bytes]]:
    bodies = plan_traffic(events=900, seed=seed, duplicates=0.05).bodies
    third = len(bodies) // 3
    return bodies[:third], bodies[third : 2 * third], bodies[2 * third :]


def test_a_full_spool_with_the_broker_gone_refuses_at_once_and_loses_nothing(
    make_sidecar: Callable[..., Sidecar],
    own_redis: OwnRedis,
    tmpfs: Callable[[Path, int], Tmpfs],
) -> None:
    # Given the sidecar on a Redis of the test's own, its spool on a small disk of its own
    sidecar = make_sidecar(redis_url=own_redis.url, broker_heartbeat_timeout="5")
    spool = tmpfs(sidecar.data_dir / "spool", 1024)
    sidecar.start()
    workers = sidecar.children("worker")
    first, second, last = traffic(51)
    results: list[PostResult] = [post_all(sidecar.webhook_url, first, concurrency=8)]

    # When the broker is gone and the spool's disk is full
    own_redis.kill()
    spool.fill()

    # Then a webhook is refused with a 503 at once: nothing can make it durable
    took = refused_at_once(sidecar.webhook_url, second[:40])
    print(f"503 answers: slowest {max(took):.3f} s, median {sorted(took)[len(took) // 2]:.3f} s")

    # And once the disk is freed and the broker is back, Qlara's retries are taken and
    # every event acknowledged, before and after, is recorded once, with no restart
    spool.free()
    own_redis.start()
    results.append(post_all(sidecar.webhook_url, second, concurrency=8, retry_503=True))
    results.append(post_all(sidecar.webhook_url, last, concurrency=8))
    assert all(status == 200 for result in results for status in result.statuses)
    assert_all_recorded_without_restarts(sidecar, results, workers, timeout=SETTLE_S)


def test_a_full_disk_under_the_broker_loses_nothing(
    make_sidecar: Callable[..., Sidecar],
    tmp_path: Path,
    tmpfs: Callable[[Path, int], Tmpfs],
) -> None:
    # Given the sidecar on a Redis of the test's own whose append-only file is on a small
    # disk (fsync'd before each reply, as the embedded Redis is)
    disk = tmpfs(tmp_path / "redis-disk", 4096)
    broker = OwnRedis(disk.path)
    broker.start()
    try:
        sidecar = make_sidecar(redis_url=broker.url, broker_heartbeat_timeout="5").start()
        workers = sidecar.children("worker")
        first, second, last = traffic(53)
        results: list[PostResult] = [post_all(sidecar.webhook_url, first, concurrency=8)]

        # When that disk fills up while webhooks arrive (Redis cannot write its file, and
        # with fsync on every write it stops rather than answer for what it cannot keep)
        disk.fill()
        results.append(post_all(sidecar.webhook_url, second, concurrency=8))

        # Then every webhook was still acknowledged: the spool took what the broker could not
        assert all(status == 200 for result in results for status in result.statuses)
        assert metric(sidecar, "qlara_webhook_requests_total", outcome="spooled") > 0

        # And once the disk is freed and the broker runs again, every event is recorded once
        disk.free()
        if broker.process is not None and broker.process.poll() is not None:
            broker.process = None
            broker.start()
        results.append(post_all(sidecar.webhook_url, last, concurrency=8, retry_503=True))
        assert all(status == 200 for result in results for status in result.statuses)
        assert_all_recorded_without_restarts(sidecar, results, workers, timeout=SETTLE_S)
    finally:
        broker.kill()


def test_a_full_disk_under_the_ledger_loses_nothing_once_freed(
    make_sidecar: Callable[..., Sidecar],
    own_redis: OwnRedis,
    tmp_path: Path,
    tmpfs: Callable[[Path, int], Tmpfs],
) -> None:
    # Given the sidecar writing its SQLite ledger on a small disk of its own
    disk = tmpfs(tmp_path / "ledger-disk", 8192)
    sidecar = make_sidecar(
        redis_url=own_redis.url,
        broker_heartbeat_timeout="5",
        database_url=f"sqlite:///{disk.path / 'ledger.sqlite3'}",
    ).start()
    workers = sidecar.children("worker")
    first, second, last = traffic(57)
    results: list[PostResult] = [post_all(sidecar.webhook_url, first, concurrency=8)]
    wait_for(
        lambda: sidecar.read("/v1/stats/webhook")["eventsTotal"] > 0,
        timeout=60,
        what="the first events in the ledger",
    )

    # When that disk fills up while webhooks keep arriving, and the workers find it full
    disk.fill()
    results.append(post_all(sidecar.webhook_url, second, concurrency=8))
    wait_for(
        lambda: failures_with(sidecar.log(), "database or disk is full") > 0,
        timeout=60,
        what="a worker to find the ledger's disk full",
    )

    # Then the webhook kept acknowledging (the broker holds the events), and once the disk
    # is freed every event is recorded once, none dead-lettered, with no restart
    disk.free()
    results.append(post_all(sidecar.webhook_url, last, concurrency=8))
    assert all(status == 200 for result in results for status in result.statuses)
    assert_all_recorded_without_restarts(sidecar, results, workers, timeout=SETTLE_S)
    assert metric(sidecar, "qlara_queue_messages", queue="dead_letter") == 0


def failures_with(log: str, error: str) -> int:
    """How many times a worker failed to record a message with ``error``, from its JSON log."""
    failures = 0
    for line in log.splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            failures += "Failed to process message" in entry.get(
                "event", ""
            ) and error in entry.get("exception", "")
    return failures
