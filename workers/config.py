"""The one typed object a worker process is built from. The queue's and the actor's names,
which the receiver shares, are :mod:`qlara.wire`'s."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workers.reconcile import ReconcileConfig

#: The Redis key prefix for the queue and every worker bookkeeping key.
DEFAULT_NAMESPACE = "qlara"


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """Everything a worker process needs; built by the entry point, never read from the env here.

    Durations carry their unit in the name. ``max_retries`` bounds the retries of transient
    failures (each after an exponential backoff between ``min_backoff_ms`` and
    ``max_backoff_ms``); ``max_deliveries`` bounds how many times one message may take its
    worker process down with it before it is dead-lettered. ``heartbeat_timeout_ms`` is how
    long a silent worker is considered alive before its unacknowledged messages are requeued;
    ``maintenance_chance`` (per million Redis commands) is how often that check runs.
    """

    redis_url: str
    database_url: str
    namespace: str = DEFAULT_NAMESPACE
    threads: int = 4
    max_retries: int = 8
    min_backoff_ms: int = 500
    max_backoff_ms: int = 60_000
    max_deliveries: int = 3
    heartbeat_timeout_ms: int = 15_000
    maintenance_chance: int = 100_000
    retention_days: int = 90
    purge_interval_s: float = 3600.0
    shutdown_timeout_s: float = 8.0
    #: The reconciler's settings; ``None``: it does not run (no Qlara API key).
    reconcile: ReconcileConfig | None = None
    #: Whether opening the ledger migrates it first; false when the parent did (`up`).
    migrate: bool = True
    #: Which destination countries the metrics name (:mod:`workers.countries`): ISO codes,
    #: or how many of the most frequent.
    country_labels: tuple[str, ...] | int = 10
    #: Which worker process of its host this is (1, 2, ...; 0 alone): the ledger-kept
    #: counters keep one row set per process, so processes never wait on each other's rows.
    writer: int = 0

    def __post_init__(self) -> None:
        positive = {
            "threads": self.threads,
            "min_backoff_ms": self.min_backoff_ms,
            "max_backoff_ms": self.max_backoff_ms,
            "max_deliveries": self.max_deliveries,
            "heartbeat_timeout_ms": self.heartbeat_timeout_ms,
            "retention_days": self.retention_days,
            "purge_interval_s": self.purge_interval_s,
            "shutdown_timeout_s": self.shutdown_timeout_s,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ValueError(f"WorkerConfig.{name} must be positive, got {value!r}")
        if self.max_retries < 0:
            raise ValueError(
                f"WorkerConfig.max_retries must be 0 or more, got {self.max_retries!r}"
            )
        if self.min_backoff_ms > self.max_backoff_ms:
            raise ValueError("WorkerConfig.min_backoff_ms must not exceed max_backoff_ms")
        if not 0 <= self.maintenance_chance <= 1_000_000:
            raise ValueError(
                "WorkerConfig.maintenance_chance is per million commands: 0 to 1000000, "
                f"got {self.maintenance_chance!r}"
            )
        if not self.namespace:
            raise ValueError("WorkerConfig.namespace must not be empty")
