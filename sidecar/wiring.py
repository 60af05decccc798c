"""From one :class:`~sidecar.settings.Settings` to each role's own configuration object.

The receiver and the workers never read the environment: they take a
:class:`receiver.ReceiverConfig`, a :class:`receiver.MetricsConfig` or a
:class:`workers.WorkerConfig`, built here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from qlara import parse_country_labels
from qlara.wire import ACTOR_NAME, QUEUE_NAME
from sidecar.children import WORKER_SLOT_ENV
from sidecar.layout import EMBEDDED_URL_FILE, LEDGER_FILE, data_dir
from sidecar.settings import (
    Settings,
    SettingsError,
    api_limits,
    env_name,
    expiry_horizon,
    reconcile_after,
)
from sidecar.tokens import Tokens

# The ledger, the workers and the API client are imported where they are used: `up`, which
# only reads where things are and starts children, carries none of them (SQLAlchemy, Alembic,
# Dramatiq and httpx took some 40 MiB there).
if TYPE_CHECKING:
    from ledger import Horizon
    from qlara_api import QlaraClient
    from receiver import MetricsConfig, ReceiverConfig
    from workers import WorkerConfig
    from workers.reconcile import ReconcileConfig


def database_url(settings: Settings) -> str:
    """``DATABASE_URL``, else the SQLite ledger under the data directory."""
    if settings.database_url is not None:
        return settings.database_url
    # ledger.default_sqlite_url's form, without loading the ledger (a test holds them equal)
    return f"sqlite:///{data_dir(settings) / LEDGER_FILE}"


def receiver_processes(settings: Settings, *, beside_workers: bool) -> int:
    """``RECEIVER_PROCESSES``, else 1 when the workers run on the same machine (``up``), else
    the number of CPUs (a ``receiver`` host of its own).

    Beside the workers, the pipeline is bound by the workers' recording, not by the receiver:
    a second receiver process adds no events per second, only an interpreter's memory (and
    uvicorn's supervising process with it).
    """
    if settings.receiver_processes is not None:
        return settings.receiver_processes
    return 1 if beside_workers else (os.cpu_count() or 1)


def worker_processes(settings: Settings, database: str) -> int:
    """``WORKERS``, else 1 for an SQLite ledger and 2 for PostgreSQL.

    SQLite has one writer at a time: a second worker process only waits for the write lock
    (and SQLite's busy handler sleeps up to 100 ms between tries), while one process's
    threads share each transaction.
    """
    if settings.workers is not None:
        return settings.workers
    scheme = database.partition(":")[0].partition("+")[0]
    return 1 if scheme == "sqlite" else 2


def redis_url(settings: Settings) -> str:
    """``REDIS_URL``, else the embedded Redis of an `up` running on the same data directory."""
    if settings.redis_url is not None:
        return settings.redis_url
    recorded = data_dir(settings) / EMBEDDED_URL_FILE
    try:
        return recorded.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise SettingsError(
            f"{env_name('redis_url')}: must be set (no `qlara-sidecar up` is running on "
            f"{settings.data_dir} to borrow its Redis from)"
        ) from None


def receiver_config(
    settings: Settings, tokens: Tokens, *, redis: str, database: str
) -> ReceiverConfig:
    """The receiver's configuration."""
    # Imported here: the receiver brings Litestar, which a worker process has no use for.
    from receiver import ReceiverConfig

    basic_auth = None
    if settings.basic_auth_user is not None and settings.basic_auth_password is not None:
        basic_auth = (settings.basic_auth_user, settings.basic_auth_password.get_secret_value())
    return ReceiverConfig(
        data_dir=data_dir(settings),
        redis_url=redis,
        database_url=database,
        webhook_token=tokens.webhook.get_secret_value() if tokens.webhook is not None else None,
        read_token=tokens.read.get_secret_value(),
        send_token=tokens.send.get_secret_value() if tokens.send is not None else None,
        queue_name=QUEUE_NAME,
        actor_name=ACTOR_NAME,
        namespace=settings.namespace,
        allow_no_auth=settings.allow_no_auth,
        basic_auth=basic_auth,
        allowed_networks=tuple(str(net) for net in settings.allowed_networks),
        trusted_proxies=tuple(str(net) for net in settings.trusted_proxies),
        allowed_hosts=settings.allowed_hosts,
        signing_secrets=settings.signing_secrets(),
        max_body_bytes=settings.max_body_bytes,
        redis_timeout=settings.redis_timeout,
        enqueue_deadline=settings.enqueue_deadline,
        openapi=settings.openapi,
        metrics_token=_metrics_token(settings),
        expiry_horizon=horizon(settings),
        # A separate listener serves /metrics: the receiver's port must not.
        serve_metrics=settings.metrics_port == 0,
    )


def metrics_config(settings: Settings, *, directory: Path) -> MetricsConfig:
    """The metrics-only listener's configuration: the values counted into ``directory``,
    plus the state gauges of the ledger and the queue this host is configured with."""
    from receiver import MetricsConfig

    return MetricsConfig(
        metrics_dir=directory,
        data_dir=data_dir(settings),
        queue_name=QUEUE_NAME,
        namespace=settings.namespace,
        database_url=settings.database_url,
        redis_url=settings.redis_url,
        redis_timeout=settings.redis_timeout,
        metrics_token=_metrics_token(settings),
        expiry_horizon=horizon(settings),
    )


def horizon(settings: Settings) -> Horizon:
    """EXPIRY_HORIZON as the ledger reads it: undocumented channels take ``other``'s."""
    from ledger import Horizon

    spans = expiry_horizon(settings)
    default = spans.pop("other")
    return Horizon(by_channel=spans, default=default)


def _metrics_token(settings: Settings) -> str | None:
    token = settings.metrics_token
    return token.get_secret_value() if token is not None else None


def worker_config(
    settings: Settings, *, redis: str, database: str, migrate: bool = True
) -> WorkerConfig:
    """A worker process's configuration (``migrate`` false: the parent migrated); its
    writer number is what its launcher put in ``QLARA_WORKER_SLOT``, 0 without one."""
    from workers import WorkerConfig

    return WorkerConfig(
        redis_url=redis,
        database_url=database,
        namespace=settings.namespace,
        threads=settings.worker_threads,
        max_retries=settings.max_retries,
        max_deliveries=settings.max_deliveries,
        heartbeat_timeout_ms=int(settings.broker_heartbeat_timeout * 1000),
        retention_days=settings.retention_days,
        shutdown_timeout_s=settings.worker_shutdown_timeout,
        reconcile=reconcile_config(settings),
        country_labels=parse_country_labels(settings.country_labels),
        migrate=migrate,
        writer=int(os.environ.get(WORKER_SLOT_ENV, "0")),
    )


def api_client(settings: Settings) -> QlaraClient:
    """A Qlara API client from the settings (which must hold the API key)."""
    from qlara_api import Limits, QlaraClient, RateLimiter

    if settings.qlara_api_key is None:
        raise SettingsError("QLARA_SIDECAR_QLARA_API_KEY is not set")
    per_second, per_minute = api_limits(settings.qlara_api_limits)
    return QlaraClient(
        settings.qlara_api_key.get_secret_value(),
        base_url=settings.qlara_api_url,
        variant=settings.qlara_api_variant,
        limiter=RateLimiter(Limits(per_second=per_second, per_minute=per_minute)),
    )


def reconcile_config(settings: Settings) -> ReconcileConfig | None:
    """The reconciler's settings, or ``None`` (it does not run) without a Qlara API key."""
    from ledger import Horizon
    from qlara_api import Limits
    from workers.reconcile import ReconcileConfig

    if settings.qlara_api_key is None:
        return None
    after = reconcile_after(settings)
    per_second, per_minute = api_limits(settings.qlara_api_limits)
    return ReconcileConfig(
        api_key=settings.qlara_api_key.get_secret_value(),
        api_url=settings.qlara_api_url,
        variant=settings.qlara_api_variant,
        limits=Limits(per_second=per_second, per_minute=per_minute),
        after=Horizon(by_channel=after, default=after.pop("other")),
        horizon=horizon(settings),
        interval_s=settings.reconcile_interval,
        public_url=(
            settings.webhook_public_url.get_secret_value()
            if settings.webhook_public_url is not None
            else None
        ),
    )


def migrate(database: str) -> None:
    """Bring the ledger at ``database`` to the current schema (idempotent)."""
    from ledger import Ledger

    Ledger.connect(database, migrate=True).close()
