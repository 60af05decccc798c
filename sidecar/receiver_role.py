"""The receiver role: uvicorn serving ``sidecar.asgi:create_app`` in one or more processes.

This module stays light on purpose (no ledger, workers or receiver imports): in a multi-process
receiver the parent only supervises uvicorn's processes, and each of those imports the app
itself, so the parent's imports would only delay the start.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import structlog

from metrics import MULTIPROC_ENV
from sidecar import metrics_dir, wiring
from sidecar.children import SERVER_OPTIONS, child_argv, child_env
from sidecar.layout import SPOOL_DIR, data_dir
from sidecar.logging import configure
from sidecar.metrics_role import metrics_spec
from sidecar.settings import Settings
from sidecar.supervisor import ChildSpec, Supervisor, stop_on_signals
from sidecar.tokens import Tokens, secrets_of

log = structlog.get_logger(__name__)

#: Seconds uvicorn lets open requests finish after SIGTERM; the webhook answers in milliseconds.
RECEIVER_GRACE_S = 2


def warn_if_open(settings: Settings) -> None:
    """Log the no-auth warning when the webhook takes requests without a token."""
    if settings.allow_no_auth:
        log.warning(
            "ALLOW_NO_AUTH is set: the webhook accepts requests without a token; "
            "only run like this behind a proxy that authenticates Qlara"
        )


def run_receiver(
    settings: Settings, tokens: Tokens, *, processes: int, metrics_listener: bool = False
) -> int:
    """Serve the webhook and read API with ``processes`` uvicorn processes until stopped.

    ``REDIS_URL`` and ``DATABASE_URL`` must be set (checked by the caller). The path carries
    the token, so uvicorn's access log stays off; uvicorn's proxy-header rewriting stays off
    too, because the receiver decides itself which proxies to believe (TRUSTED_PROXIES).
    Several processes count into one metrics directory (:mod:`sidecar.metrics_dir`).

    With ``metrics_listener`` (METRICS_PORT set, no parent serving the metrics) this process
    supervises two children instead: the receiver, and the metrics listener over the
    receiver's directory (which it then uses even for one process).
    """
    configure(settings.log_level, settings.log_format, secrets_of(settings, tokens))
    if metrics_listener:
        return _supervise_with_metrics(settings, processes)
    warn_if_open(settings)
    # The factory runs in each process and reads the environment: export flags there too.
    os.environ.update(child_env(settings))
    if processes > 1:
        # uvicorn restarts its own processes; each one's app cleans up after itself.
        os.environ[MULTIPROC_ENV] = str(metrics_dir.role_dir(settings, "receiver"))
    import uvicorn  # here: `up`, which only starts receiver children, needs none of it

    uvicorn.run(
        "sidecar.asgi:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=processes,
        **SERVER_OPTIONS,
        timeout_graceful_shutdown=RECEIVER_GRACE_S,
        # HTTPS when a certificate is configured (both set, readable: checked with the
        # settings); uvicorn hands the socket's TLS to the event loop.
        ssl_certfile=settings.tls_cert_file,
        ssl_keyfile=settings.tls_key_file,
    )
    return 0


def _supervise_with_metrics(settings: Settings, processes: int) -> int:
    counted = metrics_dir.role_dir(settings, "receiver")
    # This host's spool is the receiver's: reported (at 0) before it is first used.
    (data_dir(settings) / SPOOL_DIR).mkdir(exist_ok=True)
    supervisor = Supervisor(on_exit=metrics_dir.on_child_exit(counted))
    stop = stop_on_signals(supervisor)
    env = child_env(settings)
    env[MULTIPROC_ENV] = str(counted)
    try:
        supervisor.add(receiver_spec(settings, env, processes=processes), stage=0)
        supervisor.add(metrics_spec(env), stage=0)
        supervisor.run(stop)
    finally:
        supervisor.shutdown()
    return 0


def receiver_spec(
    settings: Settings, env: Mapping[str, str], *, processes: int | None = None
) -> ChildSpec:
    """The child running the receiver (its migrations already done by the parent, and its
    metrics listener, if any, run by the parent too)."""
    return ChildSpec(
        name="receiver",
        argv=child_argv(
            "receiver",
            "--processes",
            str(processes or wiring.receiver_processes(settings, beside_workers=True)),
            "--skip-migrate",
            "--no-metrics-listener",
        ),
        env=env,
        stop_timeout=RECEIVER_GRACE_S + 1.0,
    )
