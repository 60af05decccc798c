"""One worker process, run until it is told to stop."""

from __future__ import annotations

import gc
import os
import signal
import threading
import time
from collections.abc import Iterable
from types import FrameType

import dramatiq
import structlog

import metrics
from qlara.wire import QUEUE_NAME
from workers.broker import assemble
from workers.config import WorkerConfig
from workers.dead_letters import failure_reason
from workers.recorder import RecordedHook

log = structlog.get_logger(__name__)

#: Exit codes of :func:`run_worker`.
EXIT_OK = 0
EXIT_BOOT_FAILED = 1

#: Dramatiq's idle timeout (ms): the longest its consumer sleeps when the queue is empty or
#: every prefetched message is still being worked on, and how soon threads notice a stop. A
#: message arriving meanwhile waits up to this long: kept short for the time to visible.
WORKER_TIMEOUT_MS = 100
#: Kept back from ``shutdown_timeout_s`` for what happens after the worker stops.
_SHUTDOWN_MARGIN_S = 0.5


def run_worker(config: WorkerConfig, *, on_recorded: Iterable[RecordedHook] = ()) -> int:
    """Run one worker process: ``config.threads`` threads consuming the receipt queue.

    Blocks until SIGTERM or SIGINT, then stops taking messages, lets in-flight ones finish
    and returns within ``config.shutdown_timeout_s``. Messages prefetched but not started
    are put back on the queue; one still running when time is up stays unacknowledged and
    is redelivered after the heartbeat timeout (recording is idempotent). Must be called
    from the main thread (it installs signal handlers, and restores them before returning).

    Returns :data:`EXIT_OK` after a clean stop, :data:`EXIT_BOOT_FAILED` when the broker
    cannot be set up (Redis unreachable).
    """
    metrics.initialise()
    assembly = assemble(config, on_recorded=on_recorded)
    broker = assembly.broker
    try:
        broker.client.ping()
    except Exception as exc:
        log.error("worker cannot start: Redis unreachable", error=failure_reason(exc))
        return EXIT_BOOT_FAILED

    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    worker = dramatiq.Worker(
        broker, worker_threads=config.threads, worker_timeout=WORKER_TIMEOUT_MS
    )
    # The start-up's objects (SQLAlchemy, Dramatiq, the ledger's statements) are left out of
    # every later full collection, which otherwise walks them all while every thread waits
    # (the receiver does the same, see sidecar.memory.freeze_startup_objects). Before the
    # threads start: no message in flight may be frozen with them.
    gc.collect()
    gc.freeze()
    try:
        worker.start()
        log.info(
            "worker started",
            pid=os.getpid(),
            queue=QUEUE_NAME,
            namespace=config.namespace,
            threads=config.threads,
            frozen_objects=gc.get_freeze_count(),
        )
        while not stop.wait(1.0):
            pass
        log.info("worker stopping", pid=os.getpid())
        finished = _stop_within(worker, config.shutdown_timeout_s)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if finished:
        broker.client.close()
        log.info("worker stopped", pid=os.getpid())
    else:
        log.warning(
            "worker stopped before in-flight work finished; it will be redelivered",
            pid=os.getpid(),
            shutdown_timeout_s=config.shutdown_timeout_s,
        )
    return EXIT_OK


def _stop_within(worker: dramatiq.Worker, timeout_s: float) -> bool:
    """Stop ``worker``, giving up waiting after ``timeout_s``; return whether it finished.

    ``Worker.stop`` waits its timeout once for worker threads and again for consumers, so it
    runs in a thread bounded by one overall deadline here.
    """
    budget_s = max(timeout_s - _SHUTDOWN_MARGIN_S, 0.1)
    started = time.monotonic()
    stopper = threading.Thread(
        target=worker.stop,
        kwargs={"timeout": int(budget_s * 1000)},
        name="qlara-worker-stop",
        daemon=True,
    )
    stopper.start()
    stopper.join(timeout=max(budget_s - (time.monotonic() - started), 0.0))
    return not stopper.is_alive()
