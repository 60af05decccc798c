"""The ledger's upkeep while workers run: old records purged, per-minute counts compacted."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from dramatiq import Broker, Middleware, Worker
from dramatiq.brokers.redis import RedisBroker
from redis import RedisError

from workers.connection import LedgerConnection
from workers.dead_letters import failure_reason

log = structlog.get_logger(__name__)

#: Delay before the first purge after boot: soon, but not in the middle of start-up.
FIRST_PURGE_DELAY_S = 5.0
#: How often each worker process compacts the per-minute event counts (:mod:`ledger.rollup`).
COMPACT_INTERVAL_S = 60.0


def retention_lock_key(namespace: str) -> str:
    """The Redis key a process holds while its purge is the one for the current interval."""
    return f"{namespace}:__retention__"


class PeriodicThread(Middleware):
    """A daemon thread running ``work(broker)`` from worker boot until worker shutdown, which
    sets ``_stop`` and waits a second for it (work in progress is a transaction, or a call
    the process may leave to die with it)."""

    def __init__(self, name: str, work: Callable[[Broker], None]) -> None:
        self._name = name
        self._work = work
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker: Broker, worker: Worker) -> None:
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._work, args=(broker,), name=self._name, daemon=True
        )
        self._thread.start()

    def before_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
            self._thread = None


class Retention(PeriodicThread):
    """After worker boot, a daemon thread purges ledger records older than
    ``retention_days``: first ``FIRST_PURGE_DELAY_S`` after boot (or ``interval_s`` if
    shorter), then every ``interval_s``. Every ``COMPACT_INTERVAL_S`` (or sooner, when a purge
    is due) it also compacts the per-minute event counts. It stops at worker shutdown.

    With several worker processes, the first to take a Redis key (``SET NX`` expiring after
    the interval) purges and the others skip that round. Purging is idempotent, so if Redis
    cannot be asked the process purges anyway.
    """

    def __init__(
        self, connection: LedgerConnection, *, retention_days: int, interval_s: float
    ) -> None:
        super().__init__("qlara-retention", self._run)
        self._connection = connection
        self._retention = timedelta(days=retention_days)
        self._interval_s = interval_s

    def purge_once(self, broker: Broker) -> dict[str, Any] | None:
        """Run one round: purge unless another process did this interval. Returns the counts
        purged, or None when the round was skipped. Raises what ``Ledger.purge`` raises."""
        if not self._take_round(broker):
            return None
        cutoff = datetime.now(UTC) - self._retention
        result = self._connection.ledger.purge(cutoff)
        counts = _as_dict(result)
        log.debug("retention round done", retention_days=self._retention.days, **counts)
        return counts

    def compact_once(self) -> int:
        """Compact the passed minutes' event counts (:meth:`ledger.Ledger.compact_minutes`).
        Every process does: compactions side by side are safe, and cheap when there is
        nothing to do. Returns the rows removed."""
        removed = self._connection.ledger.compact_minutes()
        if removed:
            log.debug("event counts compacted", rows_removed=removed)
        return removed

    def _run(self, broker: Broker) -> None:
        next_purge = time.monotonic() + min(FIRST_PURGE_DELAY_S, self._interval_s)
        while not self._stop.wait(min(COMPACT_INTERVAL_S, next_purge - time.monotonic())):
            try:
                self.compact_once()
            except Exception as exc:
                log.warning("event count compaction failed", error=failure_reason(exc))
            if time.monotonic() < next_purge:
                continue
            try:
                self.purge_once(broker)
            except Exception as exc:
                log.warning("ledger purge failed", error=failure_reason(exc))
            next_purge = time.monotonic() + self._interval_s

    def _take_round(self, broker: Broker) -> bool:
        # Purging is idempotent: without Redis to ask, purge anyway.
        key = retention_lock_key(broker.namespace) if isinstance(broker, RedisBroker) else ""
        return take_round(broker, key, self._interval_s, without_redis=True)


def take_round(broker: Broker, key: str, interval_s: float, *, without_redis: bool) -> bool:
    """Whether this process does the periodic job's round: the first of the worker processes
    to take ``key`` (``SET NX``, expiring after ``interval_s``) does, the others skip it.
    ``without_redis`` is the answer when Redis cannot be asked (always yes without Redis)."""
    if not isinstance(broker, RedisBroker):
        return True
    try:
        taken = broker.client.set(key, broker.broker_id, nx=True, px=max(int(interval_s * 1000), 1))
    except RedisError:
        return without_redis
    return bool(taken)


def _as_dict(result: object) -> dict[str, Any]:
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return dataclasses.asdict(result)
    return {"result": repr(result)}
