"""`qlara-sidecar up`: everything on one machine, under one supervisor.

Start order: the embedded Redis (unless ``REDIS_URL`` is set) until it answers PING, the
ledger migrations (once, here), the tokens, the receiver, the metrics listener when
``METRICS_PORT`` is set (:mod:`sidecar.metrics_role`; the receiver then serves no
``/metrics``), ``WORKERS`` worker processes, all counting into one metrics directory
(:mod:`sidecar.metrics_dir`), and the explorer unless ``DASHBOARD_PORT`` is 0
(:mod:`sidecar.dashboard_role`). Stop order (Ctrl-C or SIGTERM): the receiver, the metrics
listener and the explorer first, so nothing new is accepted; the workers, which finish
their in-flight events; Redis last, which writes its append-only file. All within 10
seconds, stragglers killed; exit status 0.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from pathlib import Path

import click
import httpx
import structlog

from metrics import MULTIPROC_ENV
from sidecar import embedded_redis, metrics_dir, wiring
from sidecar.children import child_argv, child_env
from sidecar.dashboard_role import dashboard_spec
from sidecar.layout import EMBEDDED_URL_FILE, SPOOL_DIR, data_dir
from sidecar.logging import configure
from sidecar.metrics_role import metrics_spec
from sidecar.receiver_role import receiver_spec, warn_if_open
from sidecar.settings import Settings
from sidecar.supervisor import ChildSpec, Supervisor, stop_on_signals
from sidecar.tokens import (
    Tokens,
    embedded_redis_password,
    resolve_tokens,
    secrets_of,
    tokens_path,
)
from sidecar.urls import (
    VERIFY_OWN_RECEIVER,
    hide_password,
    local_url,
    metrics_url,
    receiver_url,
)
from sidecar.worker_role import worker_spec

log = structlog.get_logger(__name__)

#: Seconds the embedded Redis may take to answer PING (a long append-only file loads first).
REDIS_START_TIMEOUT_S = 30.0
#: Overall budget from the stop signal to the last child gone.
SHUTDOWN_DEADLINE_S = 9.0

EXIT_OK = 0
EXIT_START_FAILED = 1


def _migrate(settings: Settings, database: str) -> None:
    """`qlara-sidecar migrate` in a child process: the ledger's code (SQLAlchemy, Alembic)
    is loaded there and gone once it is done, not carried by this process for its life."""
    done = subprocess.run(  # noqa: S603 - our own command, with our own interpreter
        child_argv("migrate"),
        env=child_env(settings, database_url=database),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise RuntimeError(f"the ledger could not be migrated: {lines[-1] if lines else done}")


def run_up(settings: Settings) -> int:
    """Run the whole sidecar until Ctrl-C or SIGTERM; return the exit status."""
    root = data_dir(settings)
    configure(settings.log_level, settings.log_format, secrets_of(settings))
    counted = metrics_dir.up_dir(settings)
    supervisor = Supervisor(on_exit=metrics_dir.on_child_exit(counted))
    stop = stop_on_signals(supervisor)
    url_file = root / EMBEDDED_URL_FILE
    try:
        redis, redis_note = _start_redis(settings, supervisor, url_file)
        database = wiring.database_url(settings)
        _migrate(settings, database)
        tokens = resolve_tokens(settings)
        configure(settings.log_level, settings.log_format, secrets_of(settings, tokens))
        warn_if_open(settings)
        env = child_env(settings, redis_url=redis, database_url=database)
        env[MULTIPROC_ENV] = str(counted)
        # The receiver first: it is what Qlara is waiting for, and the slowest to start.
        supervisor.add(receiver_spec(settings, env), stage=0)
        if settings.metrics_port != 0:
            # This host's spool is the receiver's: reported (at 0) before it is first used.
            (root / SPOOL_DIR).mkdir(exist_ok=True)
            supervisor.add(metrics_spec(env), stage=0)
        if settings.dashboard_port != 0:
            supervisor.add(dashboard_spec(env), stage=0)
        for index in range(1, wiring.worker_processes(settings, database) + 1):
            supervisor.add(worker_spec(settings, index, env, migrate=False), stage=1)
        _print_banner(settings, tokens, root, redis_note, database)
        probe = _ReadinessProbe(settings)
        supervisor.run(stop, tick=probe)
    except Exception as exc:
        log.error("qlara-sidecar up could not start", error=str(exc), kind=type(exc).__name__)
        return EXIT_START_FAILED
    finally:
        supervisor.shutdown(deadline_s=SHUTDOWN_DEADLINE_S)
        with contextlib.suppress(FileNotFoundError):
            url_file.unlink()
        log.info("qlara-sidecar stopped")
    return EXIT_OK


def _start_redis(settings: Settings, supervisor: Supervisor, url_file: Path) -> tuple[str, str]:
    """Start the embedded Redis when none is configured; return its URL and a banner note."""
    if settings.redis_url is not None:
        return settings.redis_url, hide_password(settings.redis_url)
    plan = embedded_redis.plan(
        data_dir(settings),
        settings.redis_port,
        settings.redis_appendfsync,
        embedded_redis_password(settings).get_secret_value(),
    )
    child = supervisor.add(
        ChildSpec(name="redis", argv=plan.argv(), env={}, stop_timeout=3.0), stage=2
    )
    embedded_redis.wait_until_ready(plan.url, REDIS_START_TIMEOUT_S, alive=child.alive)
    url_file.parent.mkdir(parents=True, exist_ok=True)
    url_file.write_text(plan.url + "\n", encoding="utf-8")
    log.info("embedded redis ready", port=plan.port, binary=plan.binary.name)
    note = (
        f"{hide_password(plan.url)} (embedded {plan.binary.name}, append-only file in "
        f"{plan.directory}, appendfsync {plan.appendfsync}, password in tokens.json)"
    )
    return plan.url, note


def _base_url(settings: Settings) -> str:
    return receiver_url(settings)


def _print_banner(
    settings: Settings, tokens: Tokens, root: Path, redis_note: str, database: str
) -> None:
    """Tell the operator where everything is. A token is printed only when just generated."""
    base = _base_url(settings)
    stored = tokens_path(root)
    if tokens.webhook is None:
        webhook = f"{base}/webhook  (no token: ALLOW_NO_AUTH is set)"
    elif "webhook" in tokens.generated:
        webhook = (
            f"{base}/webhook/{tokens.webhook.get_secret_value()}\n"
            f"                 new token, shown only this once; kept in {stored}"
        )
    elif settings.webhook_token is not None:
        webhook = f"{base}/webhook/<QLARA_SIDECAR_WEBHOOK_TOKEN>"
    else:
        webhook = f"{base}/webhook/<webhook token in {stored}>"
    if "read" in tokens.generated:
        read_hint = (
            f"Authorization: Bearer {tokens.read.get_secret_value()}\n"
            f"                 new token, shown only this once; kept in {stored}"
        )
    elif settings.read_token is not None:
        read_hint = "Authorization: Bearer <QLARA_SIDECAR_READ_TOKEN>"
    else:
        read_hint = f"Authorization: Bearer <read token in {stored}>"
    if "send" in tokens.generated and tokens.send is not None:
        send_hint = (
            f"Authorization: Bearer {tokens.send.get_secret_value()}\n"
            f"                 new token, shown only this once; kept in {stored}"
        )
    elif settings.send_token is not None:
        send_hint = "Authorization: Bearer <QLARA_SIDECAR_SEND_TOKEN>"
    else:
        send_hint = f"Authorization: Bearer <send token in {stored}>"
    lines = [
        "qlara-sidecar is starting.",
        f"  Webhook URL:   {webhook}",
        "                 register it with Qlara (behind HTTPS)",
        f"  Read API:      {base}/v1/messages/<messageId>",
        f"                 {read_hint}",
        f"  Sends:         POST {base}/v1/sends  (what the application sent)",
        f"                 {send_hint}",
        f"  Health:        {base}/healthz",
        f"  Metrics:       {metrics_url(settings)}",
        *(
            ["                 Authorization: Bearer <QLARA_SIDECAR_METRICS_TOKEN>"]
            if settings.metrics_token is not None
            else []
        ),
        *(
            [f"  Explorer:      {local_url(settings.dashboard_host, settings.dashboard_port)}"]
            if settings.dashboard_port != 0
            else []
        ),
        (
            f"  Reconciler:    on, polling Qlara's {settings.qlara_api_variant} API at "
            f"{settings.qlara_api_url} (limits {settings.qlara_api_limits})"
            if settings.qlara_api_key is not None
            else "  Reconciler:    off (set QLARA_SIDECAR_QLARA_API_KEY to poll Qlara for "
            "what the webhook never delivered)"
        ),
        f"  Data dir:      {root}",
        f"  Ledger:        {hide_password(database)}",
        f"  Redis:         {redis_note}",
        f"  Processes:     {wiring.receiver_processes(settings, beside_workers=True)} receiver, "
        f"{wiring.worker_processes(settings, database)} worker "
        f"({settings.worker_threads} threads each)",
        "  Stop with Ctrl-C.",
    ]
    click.echo("\n".join(lines))


class _ReadinessProbe:
    """Called every supervisor tick until ``/healthz`` answers; then says so once."""

    def __init__(self, settings: Settings) -> None:
        self._url = f"{_base_url(settings)}/healthz"
        self._ready = False
        self._started = time.monotonic()
        self._warned = False

    def __call__(self) -> None:
        if self._ready:
            return
        try:
            answered = (
                httpx.get(self._url, timeout=0.5, verify=VERIFY_OWN_RECEIVER).status_code == 200
            )
        except httpx.HTTPError:
            answered = False
        if answered:
            self._ready = True
            log.info("receiver ready", seconds=round(time.monotonic() - self._started, 2))
            click.echo(f"Ready: {self._url} answers.")
        elif not self._warned and time.monotonic() - self._started > 30:
            self._warned = True
            log.warning("receiver not answering /healthz after 30 s; still trying")
