"""The explorer role: Streamlit serving :mod:`dashboard` on DASHBOARD_HOST:DASHBOARD_PORT.

Streamlit runs in this process, so the explorer's configuration, the operator's redrive
action among it, is handed over as an object (:func:`dashboard.configure`) and no secret
travels through a new variable or a command line. Streamlit's options are fixed here:
headless, no usage statistics, errors shown without details, no file watching.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog

import dashboard
from sidecar import wiring
from sidecar.children import child_argv
from sidecar.logging import configure
from sidecar.settings import Settings, SettingsError, explorer_stuck_after
from sidecar.supervisor import ChildSpec
from sidecar.tokens import secrets_of
from sidecar.urls import VERIFY_OWN_RECEIVER, metrics_url

log = structlog.get_logger(__name__)

#: Seconds Streamlit gets to close its sessions after SIGTERM.
DASHBOARD_GRACE_S = 2.0
_LOOPBACK = ("127.0.0.1", "::1", "localhost")


def streamlit_options(settings: Settings) -> dict[str, Any]:
    """Streamlit's configuration options for the explorer (``section.option``: value)."""
    return {
        "server.address": settings.dashboard_host,
        "server.port": settings.dashboard_port,
        "server.headless": True,
        "server.fileWatcherType": "none",
        "server.runOnSave": False,
        "browser.gatherUsageStats": False,
        "client.showErrorDetails": "none",
        "client.toolbarMode": "viewer",
        "global.developmentMode": False,
        # `up`'s banner says where the explorer is; Streamlit's own would repeat it, mixed in.
        "logger.hideWelcomeMessage": True,
    }


def dashboard_config(settings: Settings) -> dashboard.DashboardConfig:
    """The explorer's configuration: the ledger, thresholds, sign-in, where the metrics
    answer, and a redrive through the queue the sidecar uses."""
    database = wiring.database_url(settings)
    password = settings.dashboard_password
    token = settings.metrics_token

    def redrive(limit: int) -> tuple[int, int]:
        import workers

        try:
            redis = wiring.redis_url(settings)
        except SettingsError as exc:
            raise RuntimeError(str(exc)) from None
        config = wiring.worker_config(settings, redis=redis, database=database)
        result = workers.redrive(config, limit=limit)
        return result.redriven, result.remaining

    return dashboard.DashboardConfig(
        database_url=database,
        stuck_after=explorer_stuck_after(settings),
        gap_threshold=dashboard.parse_duration(settings.dashboard_gap_threshold),
        password=password.get_secret_value() if password is not None else None,
        users=settings.dashboard_users,
        metrics_url=metrics_url(settings),
        metrics_token=token.get_secret_value() if token is not None else None,
        metrics_verify=VERIFY_OWN_RECEIVER,  # metrics_url is this machine's own
        redrive=redrive,
    )


def run_dashboard(settings: Settings) -> int:
    """Serve the explorer until SIGTERM/SIGINT (DASHBOARD_PORT set, checked by the caller);
    return the exit status."""
    configure(settings.log_level, settings.log_format, secrets_of(settings))
    if settings.dashboard_host not in _LOOPBACK and settings.dashboard_password is None:
        log.warning(
            "the explorer listens beyond loopback without a password; "
            "set QLARA_SIDECAR_DASHBOARD_PASSWORD",
            host=settings.dashboard_host,
        )
    config = dashboard_config(settings)
    # A fresh data directory has no ledger yet; migrating is safe at any time.
    wiring.migrate(config.database_url)
    dashboard.configure(config)
    # Only now: Streamlit is heavy, and the other roles have no use for it.
    from streamlit.web import bootstrap

    options = streamlit_options(settings)
    flags = {name.replace(".", "_"): value for name, value in options.items()}
    bootstrap.load_config_options(flag_options=flags)
    log.info("serving the explorer", host=settings.dashboard_host, port=settings.dashboard_port)
    bootstrap.run(str(dashboard.APP_PATH), False, [], flags)
    return 0


def dashboard_spec(env: Mapping[str, str]) -> ChildSpec:
    """The child serving the explorer with ``env``'s settings.

    It counts no metric, so it is given no multiprocess directory.
    """
    own = {k: v for k, v in env.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    return ChildSpec(
        name="dashboard",
        argv=child_argv("dashboard"),
        env=own,
        stop_timeout=DASHBOARD_GRACE_S + 1.0,
    )
