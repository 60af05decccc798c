"""The receiver's Litestar application: the webhook intake, the read API and health."""

from __future__ import annotations

import os

from litestar import Litestar, asgi
from litestar.config.allowed_hosts import AllowedHostsConfig
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig

import metrics
from receiver.backends import Backends
from receiver.config import MetricsConfig, ReceiverConfig
from receiver.errors import EXCEPTION_HANDLERS
from receiver.health import healthz, readyz
from receiver.intake import Intake, SendsIntake
from receiver.openapi import document
from receiver.reads import get_message, list_messages, webhook_stats
from receiver.runtime import Runtime
from receiver.scrape import Exposition, StateSources, scrape
from receiver.spool import Spool


def create_app(config: ReceiverConfig) -> Litestar:
    """Build the app for one process. Raises ``ValueError`` for a bad CIDR in ``config``.

    ``GET /metrics`` serves the whole sidecar's metrics (see :mod:`receiver.scrape`), unless
    ``config.serve_metrics`` is off (a metrics listener of its own serves them); either way
    the process's series start at 0 on startup.

    ``app.state.runtime`` holds the process's resources (started on startup, stopped on
    shutdown: the Redis enqueuer and the spool drainer); ``app.state.outcomes`` counts the
    outcome of every webhook request. The OpenAPI schema (``/schema``) exists only when
    ``config.openapi`` is set. Litestar's own logging is left off: the sidecar configures
    structlog, and no request line (which would carry a path token) is logged here.

    Serve it with uvicorn's ``access_log=False`` (its request lines would show the token)
    and ``proxy_headers=False`` (uvicorn would otherwise replace the peer address with
    ``X-Forwarded-For`` before the allowlist, which applies ``trusted_proxies`` itself).
    """
    runtime = Runtime(config)
    intake = Intake(runtime)
    # The intake reads the scope and changes nothing in it: no copy needed.
    mount = asgi("/webhook", is_mount=True, copy_scope=False, include_in_schema=False)
    webhook = mount(intake.__call__)
    sends = asgi("/v1/sends", is_mount=True, copy_scope=False, include_in_schema=False)(
        SendsIntake(runtime).__call__
    )
    exposition = Exposition(runtime.state_sources(), token=config.metrics_token)
    app = Litestar(
        route_handlers=[
            webhook,
            sends,
            get_message,
            list_messages,
            webhook_stats,
            healthz,
            readyz,
            *([scrape] if config.serve_metrics else []),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        on_startup=[_count_from_zero, runtime.start],
        on_shutdown=[runtime.stop, _process_done],
        state=State({"runtime": runtime, "outcomes": runtime.outcomes, "exposition": exposition}),
        openapi_config=(
            OpenAPIConfig(
                title="qlara-sidecar receiver",
                version="1",
                path="/schema",
                use_handler_docstrings=True,
            )
            if config.openapi
            else None
        ),
        allowed_hosts=(
            # Litestar's own Host check; health answers any host, as load balancers probe
            # by address.
            AllowedHostsConfig(
                allowed_hosts=list(config.allowed_hosts),
                exclude=["^/healthz$", "^/readyz$"],
                www_redirect=False,
            )
            if config.allowed_hosts
            else None
        ),
        logging_config=None,
        debug=False,
    )
    if config.openapi:
        document(app.openapi_schema)  # what Litestar cannot see: the intake, the list's query
    return app


def _count_from_zero() -> None:
    # No parameters on purpose: Litestar passes the app to a hook that takes one.
    metrics.initialise()


def _process_done() -> None:
    # In multiprocess mode, what only a live process may show goes with it.
    metrics.process_exited(os.getpid())


def create_metrics_app(config: MetricsConfig) -> Litestar:
    """Build the metrics-only app: ``GET /metrics`` and ``GET /healthz``, nothing else.

    It serves what the processes counting into ``config.metrics_dir`` wrote there (a worker
    role on another host, or `up`'s processes) and the scrape-time gauges of the backends
    configured; it never writes into that directory, empties it or counts anything of its
    own, so it has no startup hook that initialises series (the counting processes do that)
    and no exit hook that cleans up after a process. Serve it like the receiver's app, with
    one process.
    """
    backends = Backends(
        database_url=config.database_url,
        redis_url=config.redis_url,
        redis_timeout=config.redis_timeout,
    )
    sources = StateSources(
        queue_key=f"{config.namespace}:{config.queue_name}",
        ledger=backends.ledger if config.database_url is not None else None,
        redis=backends.redis if config.redis_url is not None else None,
        spool=Spool(config.spool_dir),
        spool_if_present=True,
        horizon=config.expiry_horizon,
    )
    exposition = Exposition(sources, token=config.metrics_token, directory=config.metrics_dir)
    return Litestar(
        route_handlers=[healthz, scrape],
        exception_handlers=EXCEPTION_HANDLERS,
        on_shutdown=[backends.close],
        state=State({"exposition": exposition}),
        openapi_config=None,
        logging_config=None,
        debug=False,
    )
