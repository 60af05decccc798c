"""The metrics listener: ``GET /metrics`` and ``GET /healthz`` on METRICS_HOST:METRICS_PORT.

It serves a multiprocess directory other processes count into (:mod:`sidecar.metrics_dir`),
with one uvicorn process, and never counts into it: ``PROMETHEUS_MULTIPROC_DIR`` is read and
taken out of this process's environment before prometheus-client is imported, so every
metric object here keeps its values in memory, where no scrape looks. So this module imports
nothing heavy at the top: the receiver and the metrics package come after that.

- ``qlara-sidecar metrics`` on a worker host: the worker role's directory
  (``DATA_DIR/metrics/worker``, or ``PROMETHEUS_MULTIPROC_DIR`` when both are given it);
- `up`, and a receiver role, with METRICS_PORT set: one more supervised child
  (:func:`metrics_spec`) over their own directory, passed as ``PROMETHEUS_MULTIPROC_DIR``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import structlog

from sidecar.children import SERVER_OPTIONS, child_argv
from sidecar.layout import METRICS_DIR, WORKER_METRICS, data_dir
from sidecar.logging import configure
from sidecar.settings import Settings
from sidecar.supervisor import ChildSpec
from sidecar.tokens import secrets_of

log = structlog.get_logger(__name__)

#: The variable prometheus-client reads (``metrics.MULTIPROC_ENV``; not imported from there,
#: because importing :mod:`metrics` imports prometheus-client, which must not see it here).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Seconds uvicorn lets a scrape in progress finish after SIGTERM.
METRICS_GRACE_S = 1


def served_dir(settings: Settings) -> Path:
    """The directory to serve: ``PROMETHEUS_MULTIPROC_DIR`` when set (and taken out of this
    process's environment), else the worker role's ``DATA_DIR/metrics/worker``.

    Created when missing (the workers may start later), never emptied: the role that counts
    into it owns it. Call before prometheus-client is imported. Raises ``OSError``.
    """
    given = os.environ.pop(MULTIPROC_ENV, None)
    path = Path(given) if given else data_dir(settings) / METRICS_DIR / WORKER_METRICS
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_metrics(settings: Settings) -> int:
    """Serve ``GET /metrics`` and ``GET /healthz`` on METRICS_HOST:METRICS_PORT (set, checked
    by the caller) until SIGTERM/SIGINT; return the exit status."""
    directory = served_dir(settings)
    configure(settings.log_level, settings.log_format, secrets_of(settings))
    # Only now: prometheus-client comes with these, and must not see the directory.
    import uvicorn

    import receiver
    from sidecar import wiring

    app = receiver.create_metrics_app(wiring.metrics_config(settings, directory=directory))
    log.info(
        "serving metrics",
        host=settings.metrics_host,
        port=settings.metrics_port,
        directory=str(directory),
        ledger=settings.database_url is not None,
        queue=settings.redis_url is not None,
    )
    uvicorn.run(
        app,
        host=settings.metrics_host,
        port=settings.metrics_port,
        workers=1,
        **SERVER_OPTIONS,
        timeout_graceful_shutdown=METRICS_GRACE_S,
    )
    return 0


def metrics_spec(env: Mapping[str, str]) -> ChildSpec:
    """The child serving the metrics listener over ``env``'s ``PROMETHEUS_MULTIPROC_DIR``
    (the launcher's own directory) and its settings."""
    return ChildSpec(
        name="metrics",
        argv=child_argv("metrics"),
        env=env,
        stop_timeout=METRICS_GRACE_S + 1.0,
    )
