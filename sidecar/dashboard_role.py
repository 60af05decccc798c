"""The explorer role: Streamlit serving :mod:`dashboard` on DASHBOARD_HOST:DASHBOARD_PORT.

Streamlit runs in this process, so the explorer's configuration, the operator's redrive
action among it, is handed over as an object (:func:`dashboard.configure`) and no secret
travels through a new variable or a command line. Streamlit's options are fixed here:
headless, no usage statistics, errors shown without details, no file watching.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog

import dashboard
from sidecar.children import child_argv
from sidecar.layout import data_dir
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


#: Where the explorer's single sign-on settings are written for Streamlit (``[auth]``), in
#: the data directory (mode 0700), the file itself 0600.
SECRETS_FILE = "explorer/secrets.toml"


def sso_secrets(settings: Settings) -> str | None:
    """Streamlit's ``[auth]`` section for single sign-on (TOML), ``None`` when it is off.

    The cookie that keeps a viewer signed in is signed with a secret derived from the client
    secret: stable across restarts, and changed with it."""
    secret = settings.dashboard_oidc_client_secret
    if settings.dashboard_oidc_metadata_url is None or secret is None:
        return None
    public = settings.dashboard_public_url or (
        f"http://{settings.dashboard_host}:{settings.dashboard_port}"
    )
    cookie = hmac.new(
        secret.get_secret_value().encode(), b"qlara-explorer-cookie", hashlib.sha256
    ).hexdigest()
    values = {
        "redirect_uri": f"{public}/oauth2callback",
        "cookie_secret": cookie,
        "client_id": settings.dashboard_oidc_client_id,
        "client_secret": secret.get_secret_value(),
        "server_metadata_url": settings.dashboard_oidc_metadata_url,
    }
    # JSON strings are TOML basic strings: quotes and backslashes escaped the same way
    return "[auth]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items())


def write_sso_secrets(settings: Settings) -> Path | None:
    """Write :func:`sso_secrets` where Streamlit reads it (only this user may), or remove a
    file left from an earlier start with single sign-on; the path written, if any."""
    path = data_dir(settings) / SECRETS_FILE
    text = sso_secrets(settings)
    if text is None:
        path.unlink(missing_ok=True)
        return None
    path.parent.mkdir(mode=0o700, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(text)
    return path


def dashboard_config(settings: Settings) -> dashboard.DashboardConfig:
    """The explorer's configuration: the ledger, thresholds, sign-in, where the metrics
    answer, and a redrive through the queue the sidecar uses."""
    from sidecar import wiring  # here: `up`, which only starts the explorer, needs none of it

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
        sso=settings.dashboard_oidc_metadata_url is not None,
        sso_allowed=settings.dashboard_oidc_allowed,
    )


def run_dashboard(settings: Settings) -> int:
    """Serve the explorer until SIGTERM/SIGINT (DASHBOARD_PORT set, checked by the caller);
    return the exit status."""
    from sidecar import wiring

    configure(settings.log_level, settings.log_format, secrets_of(settings))
    config = dashboard_config(settings)
    if settings.dashboard_host not in _LOOPBACK and not config.signs_in:
        log.warning(
            "the explorer listens beyond loopback without a sign-in; set "
            "QLARA_SIDECAR_DASHBOARD_PASSWORD or QLARA_SIDECAR_DASHBOARD_OIDC_METADATA_URL",
            host=settings.dashboard_host,
        )
    # A fresh data directory has no ledger yet; migrating is safe at any time.
    wiring.migrate(config.database_url)
    dashboard.configure(config)
    # Only now: Streamlit is heavy, and the other roles have no use for it.
    from streamlit.web import bootstrap

    options = streamlit_options(settings)
    secrets = write_sso_secrets(settings)
    if secrets is not None:
        options["secrets.files"] = [str(secrets)]
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
