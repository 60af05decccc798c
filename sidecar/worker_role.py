"""The worker role: one :func:`workers.run_worker` process, or several supervised children."""

from __future__ import annotations

from collections.abc import Mapping

from metrics import MULTIPROC_ENV
from sidecar import metrics_dir
from sidecar.children import WORKER_SLOT_ENV, child_argv, child_env
from sidecar.layout import WORKER_METRICS
from sidecar.logging import configure
from sidecar.memory import limit_malloc_arenas, without_thread_caches
from sidecar.metrics_role import metrics_spec
from sidecar.settings import Settings
from sidecar.supervisor import ChildSpec, Supervisor, stop_on_signals
from sidecar.tokens import secrets_of


def run_workers(
    settings: Settings,
    *,
    processes: int,
    redis: str,
    database: str,
    migrate: bool = True,
    metrics_listener: bool = True,
) -> int:
    """Run ``processes`` worker processes until SIGTERM/SIGINT; return the exit status.

    One process runs in this process; more are children of this one, each restarted on its
    own when it dies, counting into one metrics directory (:mod:`sidecar.metrics_dir`).
    The ``worker`` command has turned glibc's per-thread malloc caches off before calling
    (:func:`sidecar.memory.restart_without_thread_caches`), and the children start with them off.
    """
    configure(settings.log_level, settings.log_format, secrets_of(settings))
    # With METRICS_PORT, this host's workers serve what they count themselves: a metrics
    # listener beside them, over their own directory (a container needs no other).
    serve_metrics = metrics_listener and settings.metrics_port != 0
    if processes == 1 and not serve_metrics:
        import workers  # here: `up`, which only starts worker children, needs none of it
        from sidecar import wiring

        limit_malloc_arenas()  # before the worker's threads start
        return workers.run_worker(
            wiring.worker_config(settings, redis=redis, database=database, migrate=migrate)
        )
    # `qlara-sidecar metrics` on this host serves this directory.
    counted = metrics_dir.role_dir(settings, WORKER_METRICS)
    supervisor = Supervisor(on_exit=metrics_dir.on_child_exit(counted))
    stop = stop_on_signals(supervisor)
    env = child_env(settings, redis_url=redis, database_url=database)
    env[MULTIPROC_ENV] = str(counted)
    try:
        for index in range(1, processes + 1):
            supervisor.add(worker_spec(settings, index, env, migrate=migrate), stage=0)
        if serve_metrics:
            supervisor.add(metrics_spec(env), stage=0)
        supervisor.run(stop)
    finally:
        supervisor.shutdown()
    return 0


def worker_spec(
    settings: Settings, index: int, env: Mapping[str, str], *, migrate: bool = True
) -> ChildSpec:
    """The child running worker number ``index`` (its writer of the ledger-kept counters),
    started with glibc's per-thread malloc caches off (so it need not execute itself again,
    see :mod:`sidecar.memory`); with ``migrate`` false it opens the ledger as it is (its
    parent migrated). Its parent serves its metrics, if anyone does."""
    skip = () if migrate else ("--skip-migrate",)
    numbered = {**env, WORKER_SLOT_ENV: str(index)}
    return ChildSpec(
        name=f"worker-{index}",
        argv=child_argv("worker", "--processes", "1", "--no-metrics-listener", *skip),
        env=without_thread_caches(numbered) or numbered,
        stop_timeout=settings.worker_shutdown_timeout + 0.5,
    )
