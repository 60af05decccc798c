"""The worker process's one ledger."""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog
from dramatiq import Broker, Middleware, Worker

import metrics
from ledger import Ledger

log = structlog.get_logger(__name__)


def _connect(database_url: str) -> Ledger:
    return Ledger.connect(database_url, migrate=True)


def connect_migrated(database_url: str) -> Ledger:
    """Open a ledger another process has migrated: Alembic is not even loaded."""
    return Ledger.connect(database_url, migrate=False)


class LedgerConnection(Middleware):
    """Holds the Ledger shared by every worker thread of this process (its engine is
    thread-safe): opened at worker boot, closed at worker shutdown.

    :attr:`ledger` opens it on first use when boot could not (the database was down then), so
    a worker that started during an outage recovers without a restart; until then each use
    raises ``ledger.LedgerUnavailable``, which the actor lets Retries handle.
    """

    def __init__(self, database_url: str, *, connect: Callable[[str], Ledger] = _connect) -> None:
        self._database_url = database_url
        self._connect = connect
        self._ledger: Ledger | None = None
        self._lock = threading.Lock()

    @property
    def ledger(self) -> Ledger:
        """The open Ledger. Raises what ``Ledger.connect`` raises when it cannot be opened."""
        ledger = self._ledger
        if ledger is not None:
            return ledger
        return self.open()

    def open(self) -> Ledger:
        """Open the ledger (once; later calls return the same one)."""
        with self._lock:
            if self._ledger is None:
                self._ledger = self._connect(self._database_url)
                _seed_metrics(self._ledger)
            return self._ledger

    def close(self) -> None:
        """Close the ledger if open; a later use opens it again."""
        with self._lock:
            ledger, self._ledger = self._ledger, None
        if ledger is not None:
            ledger.close()

    def after_worker_boot(self, broker: Broker, worker: Worker) -> None:
        try:
            self.open()
        except Exception as exc:
            # Not fatal: the actor opens it on first use and retries while it cannot.
            log.warning("ledger not reachable at worker boot", error=type(exc).__name__)

    def after_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LedgerConnection(open={self._ledger is not None})"


def _seed_metrics(ledger: Ledger) -> None:
    """What the metrics must know from the start that only the ledger remembers."""
    try:
        last = ledger.last_event_at()
    except Exception as exc:  # the metric waits for the next event; recording goes on
        log.warning("last event times not read at start", error=type(exc).__name__)
        return
    metrics.seed_last_events({name: at.timestamp() for name, at in last.items()})
