"""The ``qlara-sidecar`` command line. A leaf: nothing imports it.

Every command takes the settings as flags (``--port``, ``--data-dir``, ``--workers`` ...)
generated from :class:`~sidecar.settings.Settings`; a flag beats its ``QLARA_SIDECAR_*``
variable, which beats the default. Secrets are read from the environment only, so they
never appear in a process list or a shell history.

An invalid setting ends the command with status 2 and one line naming the variable.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, get_args, get_origin

import click

from sidecar.settings import (
    SECRET_FIELDS,
    Settings,
    SettingsError,
    env_name,
    flag_name,
    load_settings,
    require,
)
from sidecar.tokens import Tokens, tokens_path

if TYPE_CHECKING:
    from alerts import Thresholds

F = TypeVar("F", bound=Callable[..., Any])

EXIT_USAGE = 2


def _metavar(name: str, annotation: Any) -> str:
    if get_origin(annotation) is not None and type(None) not in get_args(annotation):
        args = get_args(annotation)
        if all(isinstance(a, str) for a in args):
            return "|".join(args).upper()
        return "CIDR,..." if name.endswith(("networks", "proxies")) else "NAME,..."
    if annotation is int:
        return "INTEGER"
    if annotation is float:
        return "SECONDS"
    return "TEXT"


#: The settings each command reads, shown in its --help; the others are accepted too (one
#: environment serves every command) but hidden, so a command's help is about that command.
_LOGS = ("log_level", "log_format")
_LEDGER = ("data_dir", "database_url")
_QUEUE = ("redis_url", "namespace")
_RECEIVER = (
    *_LEDGER, *_QUEUE, "host", "port", "receiver_processes", "metrics_host", "metrics_port",
    "allow_no_auth", "basic_auth_user", "allowed_networks", "trusted_proxies", "allowed_hosts",
    "max_body_bytes", "redis_timeout", "enqueue_deadline", "openapi", "tls_cert_file",
    "tls_key_file", *_LOGS,
)  # fmt: skip
_WORKER = (
    *_LEDGER, *_QUEUE, "workers", "worker_threads", "retention_days", "max_retries",
    "max_deliveries", "broker_heartbeat_timeout", "worker_shutdown_timeout", "country_labels",
    "metrics_host", "metrics_port", *_LOGS,
)  # fmt: skip
_METRICS = (*_LEDGER, *_QUEUE, "metrics_host", "metrics_port", "redis_timeout", *_LOGS)
_DASHBOARD = (
    *_WORKER, "host", "port", "dashboard_host",
    "dashboard_port", "dashboard_users", "dashboard_stuck_after", "dashboard_gap_threshold",
    "alert_thresholds", "tls_cert_file",
)  # fmt: skip
_SIMULATE = ("data_dir", "host", "port", "allow_no_auth", "tls_cert_file")
_ALL: tuple[str, ...] = ()
_SETTINGS_EPILOG = (
    "Every setting is also read from its QLARA_SIDECAR_* variable, and any other setting's "
    "flag is accepted too; `qlara-sidecar config` lists them all with their values."
)


def settings_options(*shown: str) -> Callable[[F], F]:
    """Add one flag per non-secret setting; the values arrive in ``**settings``. Only the
    ``shown`` settings (all when none is named) appear in --help."""
    unknown = set(shown) - set(Settings.model_fields)
    if unknown:
        raise ValueError(f"no such settings: {sorted(unknown)}")

    def add(func: F) -> F:
        for name, info in reversed(list(Settings.model_fields.items())):
            if name in SECRET_FIELDS:
                continue
            help_text = f"{info.description} [env: {env_name(name)}]"
            hidden = bool(shown) and name not in shown
            if info.annotation is bool:
                flag = flag_name(name)
                option = click.option(
                    f"{flag}/--no-{flag.removeprefix('--')}",
                    name,
                    default=None,
                    help=help_text,
                    hidden=hidden,
                )
            else:
                option = click.option(
                    flag_name(name),
                    name,
                    default=None,
                    metavar=_metavar(name, info.annotation),
                    help=help_text,
                    hidden=hidden,
                )
            func = option(func)
        return func

    return add


def _settings(flags: dict[str, Any]) -> Settings:
    """Build the settings, or end the command with status 2 and the one-line reason."""
    try:
        return load_settings(flags)
    except SettingsError as exc:
        _usage_error(str(exc))


def _usage_error(message: str) -> NoReturn:
    click.echo(f"qlara-sidecar: error: {message}", err=True)
    sys.exit(EXIT_USAGE)


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
def main() -> None:
    """Receive Qlara delivery-status webhooks, make each durable in milliseconds, and record
    every message's state in a ledger you can query.

    \b
    Start here (one machine, nothing else to install):
        qlara-sidecar up
    then register the printed webhook URL with Qlara and ask for a message:
        curl -H "Authorization: Bearer $READ_TOKEN" http://127.0.0.1:8000/v1/messages/<id>

    Every setting is a flag of each command and a QLARA_SIDECAR_* variable;
    `qlara-sidecar config` lists them with their current values.
    """


@main.command()
@settings_options()
def up(**flags: Any) -> None:
    """Run everything: embedded Redis, ledger, receiver and workers, supervised.

    Without QLARA_SIDECAR_REDIS_URL a private Redis-compatible server is started under the
    data directory. Crashed processes are restarted. Ctrl-C stops the receiver first,
    lets the workers finish, stops Redis last.

    \b
    Example:
        qlara-sidecar up --port 8080 --data-dir /var/lib/qlara
    """
    from sidecar.up import run_up

    sys.exit(run_up(_settings(flags)))


@main.command(epilog=_SETTINGS_EPILOG)
@click.option(
    "--processes",
    type=click.IntRange(1, 256),
    default=None,
    help="Receiver processes. [default: RECEIVER_PROCESSES]",
)
@click.option("--skip-migrate", is_flag=True, hidden=True, help="The parent already migrated.")
@click.option(
    "--no-metrics-listener",
    is_flag=True,
    hidden=True,
    help="The parent runs the metrics listener.",
)
@settings_options(*_RECEIVER)
def receiver(
    processes: int | None, skip_migrate: bool, no_metrics_listener: bool, **flags: Any
) -> None:
    """Run the receiver only: the webhook and the read API over HTTP.

    Needs QLARA_SIDECAR_REDIS_URL and QLARA_SIDECAR_DATABASE_URL (shared with the workers).
    With METRICS_PORT set, GET /metrics moves from the receiver's port to its own listener
    on METRICS_HOST:METRICS_PORT, a second supervised process.

    \b
    Example:
        QLARA_SIDECAR_REDIS_URL=redis://10.0.0.5:6379/0 \\
        QLARA_SIDECAR_DATABASE_URL=postgresql+psycopg://qlara@10.0.0.6/qlara \\
        qlara-sidecar receiver --processes 4 --host 0.0.0.0
    """
    from sidecar.receiver_role import run_receiver
    from sidecar.tokens import TokenFileError, resolve_tokens

    settings = _settings(flags)
    try:
        require(settings, "redis_url")
        database = require(settings, "database_url")
    except SettingsError as exc:
        _usage_error(str(exc))
    if not skip_migrate:
        # Imported here: the ledger is heavy, and `up`'s receiver child has no use for it.
        from sidecar.wiring import migrate

        migrate(database)
    try:
        tokens = resolve_tokens(settings)
    except TokenFileError as exc:
        click.echo(f"qlara-sidecar: error: {exc}", err=True)
        sys.exit(1)
    _announce_generated(settings, tokens)
    from sidecar.wiring import receiver_processes

    sys.exit(
        run_receiver(
            settings,
            tokens,
            processes=processes or receiver_processes(settings, beside_workers=False),
            metrics_listener=settings.metrics_port != 0 and not no_metrics_listener,
        )
    )


@main.command(epilog=_SETTINGS_EPILOG)
@click.option(
    "--processes",
    type=click.IntRange(1, 256),
    default=None,
    help="Worker processes. [default: WORKERS]",
)
@click.option("--skip-migrate", is_flag=True, hidden=True, help="The parent already migrated.")
@click.option(
    "--no-metrics-listener",
    is_flag=True,
    hidden=True,
    help="The parent runs the metrics listener.",
)
@settings_options(*_WORKER)
def worker(
    processes: int | None, skip_migrate: bool, no_metrics_listener: bool, **flags: Any
) -> None:
    """Run workers only: take events off the queue and record them in the ledger.

    Needs QLARA_SIDECAR_REDIS_URL; the ledger is QLARA_SIDECAR_DATABASE_URL (default: SQLite
    under the data directory). With --processes N, N worker processes are started and each
    is restarted on its own if it dies. With --metrics-port, a listener beside them serves
    GET /metrics with what they count (as `qlara-sidecar metrics` would): a worker host or
    container then needs nothing else to be scraped.

    \b
    Example:
        QLARA_SIDECAR_REDIS_URL=redis://10.0.0.5:6379/0 qlara-sidecar worker --processes 4
        qlara-sidecar worker --processes 2 --metrics-host 0.0.0.0 --metrics-port 9100
    """
    from sidecar.memory import restart_without_thread_caches

    # First thing: executing again imports anew whatever is loaded by then (the ledger,
    # Dramatiq and SQLAlchemy would take a second more).
    restart_without_thread_caches()
    from sidecar import wiring
    from sidecar.worker_role import run_workers

    settings = _settings(flags)
    try:
        redis = require(settings, "redis_url")
    except SettingsError as exc:
        _usage_error(str(exc))
    database = wiring.database_url(settings)
    sys.exit(
        run_workers(
            settings,
            processes=processes or wiring.worker_processes(settings, database),
            redis=redis,
            database=database,
            migrate=not skip_migrate,
            metrics_listener=not no_metrics_listener,
        )
    )


@main.command(epilog=_SETTINGS_EPILOG)
@settings_options(*_METRICS)
def metrics(**flags: Any) -> None:
    """Serve GET /metrics and GET /healthz only, on METRICS_HOST:METRICS_PORT.

    For a host that runs workers and no receiver: nothing else serves the counters its
    worker processes write. It shows what they counted (the multiprocess directory
    PROMETHEUS_MULTIPROC_DIR, or by default DATA_DIR/metrics/worker, where
    `qlara-sidecar worker --processes N` with N of 2 or more counts), plus what is waiting
    now in the backends this host is configured with: the ledger (DATABASE_URL), the queue
    (REDIS_URL), and the spool when DATA_DIR has one. A backend not configured is left out;
    one that is down is reported as qlara_scrape_source_up 0. It never empties the
    directory and counts nothing of its own. With METRICS_TOKEN set, a scrape needs
    Authorization: Bearer <token>. One process; METRICS_PORT must be set.

    \b
    Example (a worker host, the metrics on loopback for a local Prometheus agent):
        export QLARA_SIDECAR_REDIS_URL=redis://10.0.0.5:6379/0
        export QLARA_SIDECAR_DATABASE_URL=postgresql+psycopg://qlara@10.0.0.6/qlara
        qlara-sidecar worker --processes 4 &
        qlara-sidecar metrics --metrics-port 9100
        curl http://127.0.0.1:9100/metrics
    """
    from sidecar.metrics_role import run_metrics

    settings = _settings(flags)
    if settings.metrics_port == 0:
        _usage_error(
            f"{env_name('metrics_port')}: must be set (1-65535) for this command, "
            f"e.g. {flag_name('metrics_port')} 9100"
        )
    sys.exit(run_metrics(settings))


@main.command(epilog=_SETTINGS_EPILOG)
@settings_options(*_DASHBOARD)
def dashboard(**flags: Any) -> None:
    """Serve the delivery explorer (Streamlit) on DASHBOARD_HOST:DASHBOARD_PORT.

    Pages: overview, messages, message detail, webhook health, failures, stuck messages,
    all read from the ledger (DATABASE_URL, default SQLite under the data directory); each
    page's filters live in its URL, so a link opens the exact view. Loopback only unless
    DASHBOARD_HOST says otherwise; then set QLARA_SIDECAR_DASHBOARD_PASSWORD (and
    DASHBOARD_USERS). `up` starts it too, unless DASHBOARD_PORT is 0.

    \b
    Example:
        qlara-sidecar dashboard --dashboard-port 8502
    then open http://127.0.0.1:8502/webhook_health?channel=sms&window=6h
    """
    from sidecar.dashboard_role import run_dashboard

    settings = _settings(flags)
    if settings.dashboard_port == 0:
        _usage_error(
            f"{env_name('dashboard_port')}: must be set (1-65535) for this command, "
            f"e.g. {flag_name('dashboard_port')} 8501"
        )
    sys.exit(run_dashboard(settings))


@main.command(epilog=_SETTINGS_EPILOG)
@click.option(
    "--limit",
    type=click.IntRange(0, None),
    default=None,
    help="Replay at most this many dead letters (oldest first). [default: all]",
)
@settings_options(*_WORKER)
def redrive(limit: int | None, **flags: Any) -> None:
    """Replay dead letters through the queue, once their cause is fixed.

    Uses QLARA_SIDECAR_REDIS_URL, or the embedded Redis of an `up` running on the same data
    directory.

    \b
    Example:
        qlara-sidecar redrive --limit 100
    """
    import workers
    from sidecar import wiring
    from sidecar.logging import configure
    from sidecar.tokens import secrets_of

    settings = _settings(flags)
    configure(settings.log_level, settings.log_format, secrets_of(settings))
    try:
        redis = wiring.redis_url(settings)
    except SettingsError as exc:
        _usage_error(str(exc))
    config = wiring.worker_config(settings, redis=redis, database=wiring.database_url(settings))
    result = workers.redrive(config, limit=limit)
    click.echo(f"redriven: {result.redriven}")
    click.echo(f"remaining: {result.remaining}")


@main.command(epilog=_SETTINGS_EPILOG)
@settings_options(*_LEDGER, *_LOGS)
def migrate(**flags: Any) -> None:
    """Bring the ledger database to the current schema (safe to run any time).

    \b
    Example:
        QLARA_SIDECAR_DATABASE_URL=postgresql+psycopg://qlara@db/qlara qlara-sidecar migrate
    """
    from sidecar import wiring
    from sidecar.logging import configure
    from sidecar.tokens import secrets_of
    from sidecar.urls import hide_password

    settings = _settings(flags)
    configure(settings.log_level, settings.log_format, secrets_of(settings))
    database = wiring.database_url(settings)
    wiring.migrate(database)
    click.echo(f"ledger at {hide_password(database)} is up to date")


@main.command()
@click.option(
    "--markdown", is_flag=True, help="Print the settings reference as a Markdown table instead."
)
@settings_options()
def config(markdown: bool, **flags: Any) -> None:
    """Print every setting: its variable, flag, default, current value (secrets masked).

    \b
    Example:
        QLARA_SIDECAR_PORT=9000 qlara-sidecar config
        qlara-sidecar config --markdown > docs/settings.md
    """
    settings = _settings(flags)
    from sidecar.report import markdown_table, settings_report

    click.echo(markdown_table() if markdown else settings_report(settings, flags))


_API = ("qlara_api_url", "qlara_api_variant", "qlara_api_limits", *_LOGS)


@main.group("webhook", epilog=_SETTINGS_EPILOG)
def webhook_group() -> None:
    """The webhook URL Qlara has on file: show it, register the sidecar's, revoke it.

    Needs QLARA_SIDECAR_QLARA_API_KEY (in the environment: it is a secret). The URL to
    register is --url, else QLARA_SIDECAR_WEBHOOK_PUBLIC_URL (HTTPS only: Qlara calls
    nothing else). One URL per account: registering replaces whatever is on file.

    \b
    Example:
        qlara-sidecar webhook show
        qlara-sidecar webhook register --url https://hooks.example.com/webhook/$TOKEN
        qlara-sidecar webhook revoke --yes        # the partner-gateway surface only
    """


def _api_client(flags: dict[str, Any]) -> Any:
    from sidecar.wiring import api_client

    settings = _settings(flags)
    if settings.qlara_api_key is None:
        _usage_error("set QLARA_SIDECAR_QLARA_API_KEY (Qlara's API key) in the environment")
    return settings, api_client(settings)


def _shown(url: str | None, expected: str | None) -> str:
    """A webhook URL with its token masked (the last path segment), and whether it is ours."""
    if url is None:
        return "(none)"
    base, _, last = url.rstrip("/").rpartition("/")
    masked = f"{base}/{last[:3]}***" if last else url
    if expected is None:
        return masked
    return masked + ("  (this sidecar's)" if url == expected else "  (NOT this sidecar's)")


@webhook_group.command("show", epilog=_SETTINGS_EPILOG)
@settings_options(*_API)
def webhook_show(**flags: Any) -> None:
    """Print the webhook URL Qlara has on file (token masked) and whether it is this sidecar's."""
    settings, client = _api_client(flags)
    expected = _public_url(settings)
    with _api_errors():
        on_file = client.registration()
    click.echo(f"On file with Qlara: {_shown(on_file.url if on_file else None, expected)}")
    if on_file is not None and on_file.status:
        click.echo(f"Status:             {on_file.status}")


@webhook_group.command("register", epilog=_SETTINGS_EPILOG)
@click.option(
    "--url", default=None, help="The HTTPS URL to register (default: WEBHOOK_PUBLIC_URL)."
)
@click.option("--yes", is_flag=True, help="Do not ask before replacing what is on file.")
@settings_options(*_API)
def webhook_register(url: str | None, yes: bool, **flags: Any) -> None:
    """Register this sidecar's URL with Qlara: shows what is on file and what will be, asks
    (or --yes), registers (replacing the old one), then reads it back to verify."""
    settings, client = _api_client(flags)
    url = url or _public_url(settings)
    if url is None:
        _usage_error("give --url, or set QLARA_SIDECAR_WEBHOOK_PUBLIC_URL")
    if not url.startswith("https://"):
        _usage_error("the webhook URL must start with https:// (Qlara only calls HTTPS URLs)")
    with _api_errors():
        on_file = client.registration()
        click.echo(f"On file with Qlara: {_shown(on_file.url if on_file else None, None)}")
        click.echo(f"To register:        {_shown(url, None)}")
        if on_file is not None and on_file.url == url:
            click.echo("Already registered: nothing to do.")
            return
        if not yes and not click.confirm("Replace what is on file?", default=False):
            click.echo("Nothing changed.")
            sys.exit(1)
        client.register(url)
        now = client.registration()
    if now is None or now.url != url:
        click.echo("qlara-sidecar: error: Qlara does not show the new URL on file", err=True)
        sys.exit(1)
    click.echo("Registered, and verified: Qlara now calls this sidecar.")


@webhook_group.command("revoke", epilog=_SETTINGS_EPILOG)
@click.option("--yes", is_flag=True, help="Do not ask.")
@settings_options(*_API)
def webhook_revoke(yes: bool, **flags: Any) -> None:
    """Revoke the registration (partner-gateway surface). Events already in flight may still
    arrive at the old URL."""
    _, client = _api_client(flags)
    if not yes and not click.confirm("Revoke the webhook registration?", default=False):
        click.echo("Nothing changed.")
        sys.exit(1)
    with _api_errors():
        client.revoke()
    click.echo("Revoked: Qlara no longer calls a webhook for this account.")


@contextlib.contextmanager
def _api_errors() -> Iterator[None]:
    """End the command with status 1 and Qlara's answer, named, when a call fails."""
    from qlara_api import QlaraApiError

    try:
        yield
    except QlaraApiError as exc:
        click.echo(f"qlara-sidecar: error: {exc}", err=True)
        sys.exit(1)


def _public_url(settings: Any) -> str | None:
    url = settings.webhook_public_url
    return url.get_secret_value() if url is not None else None


@main.group("alerts")
def alerts_group() -> None:
    """Prometheus alert rules for the sidecar, rendered from one set of thresholds.

    The rule files shipped in alerts/rules/ are rendered from the default thresholds.
    To tune them, print the defaults, keep the keys you change, and render your own:

    \b
    Example:
        qlara-sidecar alerts thresholds > thresholds.yaml      # edit: keep what you change
        qlara-sidecar alerts render --thresholds thresholds.yaml --out /etc/prometheus/qlara
    then add /etc/prometheus/qlara/*.yml to rule_files in prometheus.yml.
    alerts/README.md explains each alert, its thresholds and its runbook.
    """


_THRESHOLDS_OPTION = click.option(
    "--thresholds",
    "thresholds_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="YAML file of the thresholds to change (nested keys as `alerts thresholds` prints "
    "them); every key left out keeps its default.",
)


def _thresholds(path: Path | None) -> Thresholds:
    from alerts import ThresholdsError, load_thresholds

    try:
        return load_thresholds(path)
    except ThresholdsError as exc:
        _usage_error(str(exc))


@alerts_group.command("render")
@_THRESHOLDS_OPTION
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("alerts/rules"),
    show_default=True,
    help="Directory the rule files are written to (created if missing).",
)
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing; exit 1 naming the files in --out that differ from the rendering.",
)
def alerts_render(thresholds_file: Path | None, out: Path, check: bool) -> None:
    """Write the Prometheus rule files: recording.yml (failure shares per channel and
    window, hourly volume), webhook.yml and delivery.yml (the alerts).

    Each alert has the labels severity and service="qlara-sidecar", and the annotations
    summary, description, runbook_url and dashboard_url (a view of the explorer at
    explorer_url). `promtool check rules` accepts every file.

    \b
    Examples:
        qlara-sidecar alerts render                       # the shipped files, in a checkout
        qlara-sidecar alerts render --check               # are they up to date?
        qlara-sidecar alerts render --thresholds thresholds.yaml --out /etc/prometheus/qlara
    """
    from alerts import render, stale, write

    thresholds = _thresholds(thresholds_file)
    if check:
        differ = stale(thresholds, out)
        for name in differ:
            click.echo(f"{out / name} differs from the rendering", err=True)
        if not differ:
            click.echo(f"the rule files in {out} are up to date ({len(render(thresholds))} files)")
        sys.exit(1 if differ else 0)
    for path in write(thresholds, out):
        click.echo(f"wrote {path}")


@alerts_group.command("thresholds")
@_THRESHOLDS_OPTION
@click.option(
    "--markdown", is_flag=True, help="Print the thresholds reference as a Markdown table instead."
)
def alerts_thresholds(thresholds_file: Path | None, markdown: bool) -> None:
    """Print every threshold of the alert rules as YAML (the defaults, or with --thresholds
    the values that file makes), ready to edit and pass to `alerts render --thresholds`.

    \b
    Examples:
        qlara-sidecar alerts thresholds > thresholds.yaml
        qlara-sidecar alerts thresholds --markdown
    """
    from alerts import markdown_table, thresholds_yaml

    if markdown:
        click.echo(markdown_table())
        return
    click.echo(thresholds_yaml(_thresholds(thresholds_file)), nl=False)


def _comma_list(allowed: tuple[str, ...], upper: bool) -> Callable[..., tuple[str, ...]]:
    """A click callback reading ``a,b,c`` into a tuple of values from ``allowed``."""

    def parse(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
        items = [v.strip() for v in value.split(",") if v.strip()]
        items = [v.upper() if upper else v.lower() for v in items]
        wrong = [v for v in items if v not in allowed]
        if not items or wrong:
            raise click.BadParameter(f"expected a comma-separated list of {', '.join(allowed)}")
        return tuple(dict.fromkeys(items))

    return parse


@main.command(epilog=_SETTINGS_EPILOG)
@click.option(
    "--url",
    default=None,
    help="Webhook URL to post to. [default: this machine's sidecar, from --host, --port and "
    "the token in QLARA_SIDECAR_WEBHOOK_TOKEN or DATA_DIR/tokens.json]",
)
@click.option(
    "--rate",
    type=click.FloatRange(0, None, min_open=True),
    default=20.0,
    show_default=True,
    help="Status events per second (resends come on top, within the same cap).",
)
@click.option(
    "--duration",
    type=click.FloatRange(0, None, min_open=True),
    default=None,
    help="Stop after this many seconds. [default: endless, or until --messages are done]",
)
@click.option(
    "--messages",
    type=click.IntRange(1, None),
    default=None,
    help="Send this many messages, every event of each, then stop.",
)
@click.option(
    "--duplicates",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    metavar="P",
    help="Share of requests Qlara posts a second time, a few seconds later.",
)
@click.option(
    "--reorder",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    metavar="P",
    help="Share of messages whose first event arrives after their last one.",
)
@click.option(
    "--shapes",
    default="A,B,C",
    show_default=True,
    callback=_comma_list(("A", "B", "C"), upper=True),
    help="Payload shapes: A (Webhooks guide), B (platform), C (SMS Universal, per part).",
)
@click.option(
    "--channels",
    default="sms,rcs,whatsapp",
    show_default=True,
    callback=_comma_list(("sms", "rcs", "whatsapp"), upper=False),
    help="Channels to send on.",
)
@click.option(
    "--silence-after",
    type=click.FloatRange(0, None),
    default=None,
    metavar="SECONDS",
    help="Stop sending after this many seconds but stay alive (until --duration or Ctrl-C), "
    "so silence alerts can fire.",
)
@click.option(
    "--error-burst",
    "error_bursts",
    multiple=True,
    metavar="AT[:SECONDS[:SHARE]]",
    help="A spike of failures: from AT seconds, for SECONDS (30), SHARE (0.8) of the final "
    "statuses are errors. Repeatable.",
)
@click.option(
    "--send-report",
    is_flag=True,
    help="Also report each message's send to the sidecar's POST /v1/sends, as the "
    "application would (with QLARA_SIDECAR_SEND_TOKEN, or the one in tokens.json).",
)
@click.option(
    "--drop",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Share of messages whose final-status webhooks are never posted, as if Qlara gave "
    "up on them; with --fake-qlara, that fake learns their true final status instead, for "
    "the reconciler to find.",
)
@click.option(
    "--fake-qlara",
    "fake_qlara_url",
    default=None,
    metavar="URL",
    help="Base URL of a `qlara-sidecar fake-qlara` to tell the dropped final statuses to "
    "(http://127.0.0.1:8090).",
)
@click.option(
    "--time-scale",
    type=click.FloatRange(0, None, min_open=True),
    default=0.01,
    show_default=True,
    help="Multiplies Qlara's real delays (an SMS delivered in ~6 s, expiry after 15 min); "
    "1 is real time.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 1024),
    default=16,
    show_default=True,
    help="Requests in flight at most.",
)
@click.option(
    "--seed",
    type=click.IntRange(0, None),
    default=None,
    help="Same seed, same traffic (message ids included). [default: random]",
)
@click.option(
    "--summary-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the final summary (JSON) to this file.",
)
@click.option(
    "--progress",
    type=click.Choice(["auto", "bar", "lines", "none"]),
    default="auto",
    show_default=True,
    help="Progress on stderr: auto is a bar on a terminal and a line every 5 s otherwise.",
)
@settings_options(*_SIMULATE)
def simulate(
    url: str | None,
    rate: float,
    duration: float | None,
    messages: int | None,
    duplicates: float,
    reorder: float,
    shapes: tuple[str, ...],
    channels: tuple[str, ...],
    silence_after: float | None,
    error_bursts: tuple[str, ...],
    send_report: bool,
    drop: float,
    fake_qlara_url: str | None,
    time_scale: float,
    concurrency: int,
    seed: int | None,
    summary_file: Path | None,
    progress: str,
    **flags: Any,
) -> None:
    """Post realistic Qlara delivery-status traffic to a sidecar, and report exactly what
    was sent.

    Each message is SENT, then after a lognormal delay per channel gets a final status
    (delivered, error with a realistic text, or expired; read for some WhatsApp and RCS),
    in all three payload shapes, some requests as JSON arrays. A request answered other than
    200 is retried like Qlara would; only 200s are counted. The summary (JSON on stdout)
    gives messages, unique events by channel and status, duplicates, requests and non-200
    answers: the sidecar's /v1/stats/webhook must show the same eventsTotal and
    duplicatesTotal. Ctrl-C stops cleanly and still prints it.

    \b
    Examples:
        qlara-sidecar simulate --messages 1000 --rate 100
        qlara-sidecar simulate --duration 300 --duplicates 0.05 --reorder 0.05
        qlara-sidecar simulate --duration 600 --error-burst 120:60 --channels whatsapp
        qlara-sidecar simulate --rate 5 --silence-after 60 --duration 900
        qlara-sidecar simulate --url https://hooks.example.com/webhook/$TOKEN \\
            --messages 300 --summary-file summary.json
        qlara-sidecar simulate --messages 500 --send-report --drop 0.1 \\
            --fake-qlara http://127.0.0.1:8090
    """
    import random
    from datetime import UTC, datetime

    from sidecar.simulate import SendOptions, local_webhook_url, run_simulate
    from sidecar.tokens import TokenFileError
    from simulator import TrafficOptions, parse_bursts

    settings = _settings(flags)
    verify = url is not None  # this machine's own sidecar: see VERIFY_OWN_RECEIVER
    if url is None:
        try:
            url = local_webhook_url(settings)
        except TokenFileError as exc:
            _usage_error(f"{exc}; or pass --url")
    try:
        traffic = TrafficOptions(
            rate=rate,
            seed=random.randrange(2**32) if seed is None else seed,  # noqa: S311 - not a secret
            messages=messages,
            shapes=shapes,
            channels=channels,
            duplicates=duplicates,
            reorder=reorder,
            time_scale=time_scale,
            error_bursts=parse_bursts(error_bursts),
            start=datetime.now(UTC),
            report_sends=send_report,
            drop=drop,
        )
    except ValueError as exc:
        _usage_error(str(exc))
    if drop and fake_qlara_url is None:
        _usage_error("--drop needs --fake-qlara: the dropped final statuses must be known there")
    sends_url = send_token = None
    if send_report:
        from sidecar.tokens import resolve_tokens

        sends_url = url.split("/webhook", 1)[0] + "/v1/sends"
        try:
            token = resolve_tokens(settings, generate=False).send
        except TokenFileError as exc:
            _usage_error(f"{exc}")
        if token is None:
            _usage_error("no send token: set QLARA_SIDECAR_SEND_TOKEN or start the sidecar once")
        send_token = token.get_secret_value()
    if progress == "auto":
        progress = "bar" if sys.stderr.isatty() else "lines"
    options = SendOptions(
        url=url,
        rate=rate,
        duration=duration,
        silence_after=silence_after,
        concurrency=concurrency,
        progress="bar" if progress == "bar" else "lines" if progress == "lines" else "none",
        messages=messages,
        verify=verify,
        sends_url=sends_url,
        send_token=send_token,
        qlara_url=fake_qlara_url,
    )
    sys.exit(run_simulate(traffic, options, summary_file))


@main.command("fake-qlara")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8090, show_default=True)
@click.option(
    "--api-key",
    envvar="QLARA_SIDECAR_QLARA_API_KEY",
    default=None,
    help="The X-Api-Key it accepts [env: QLARA_SIDECAR_QLARA_API_KEY; default: generated and "
    "printed].",
)
@click.option(
    "--limits",
    default="50/s,1000/m",
    show_default=True,
    help="Rate limits per key, answered with real 429s (trial accounts: 10/s,100/m).",
)
@click.option(
    "--messages-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="JSON array of messages to know from the start "
    '([{"messageId","customerMessageId","channel","status","description"}]).',
)
def fake_qlara(
    host: str, port: int, api_key: str | None, limits: str, messages_file: Path | None
) -> None:
    """Serve a fake Qlara API on loopback, for tests and demos: message status and webhook
    registration on both surfaces, the account's rate limits with real 429s, and injectable
    faults.

    Point the sidecar at it with QLARA_SIDECAR_QLARA_API_URL=http://HOST:PORT/api. Control
    endpoints (no key): POST /_fake/messages feeds it messages, POST /_fake/faults injects
    faults ({"errors": N} 500s, {"delay": S} slow answers, {"strictChannel": true} wrong-channel
    404s), GET /_fake/log lists every request it answered.

    \b
    Example:
        qlara-sidecar fake-qlara --port 8090 --limits 10/s,100/m &
        QLARA_SIDECAR_QLARA_API_URL=http://127.0.0.1:8090/api \\
        QLARA_SIDECAR_QLARA_API_KEY=<the key it printed> qlara-sidecar up
    """
    import json
    import secrets

    import uvicorn

    from qlara_api.fake import FakeQlara, create_fake_app
    from qlara_api.limits import Limits
    from sidecar.settings import api_limits

    try:
        per_second, per_minute = api_limits(limits)
    except ValueError as exc:
        _usage_error(f"--limits: {exc}")
    if api_key is None:
        api_key = secrets.token_urlsafe(24)
        click.echo(f"API key (generated): {api_key}")
    fake = FakeQlara(api_key=api_key, limits=Limits(per_second, per_minute))
    if messages_file is not None:
        fake.add(json.loads(messages_file.read_text()))
    click.echo(
        f"Fake Qlara API at http://{host}:{port}/api (limits {per_second}/s, {per_minute}/m)"
    )
    uvicorn.run(create_fake_app(fake), host=host, port=port, log_level="warning")


#: Where `demo` keeps its data unless told otherwise: never mixed with a real ledger.
DEMO_DATA_DIR = "./qlara-demo-data"
#: What `demo` sets unless a flag or a variable says otherwise: quiet logs, and a reconciler
#: quick enough that a dropped final is filled in while one watches.
DEMO_DEFAULTS = {
    "data_dir": DEMO_DATA_DIR,
    "log_level": "warning",
    "reconcile_after": "sms=20s,rcs=20s,whatsapp=20s,other=20s",
    "reconcile_interval": "5",
}


@main.command()
@settings_options()
def demo(**flags: Any) -> None:
    """Run `up` with gentle simulated Qlara traffic flowing in, to see live numbers at once.

    About two events a second in every payload shape and channel, with the odd duplicate,
    late event and failure. The simulated application reports each send to /v1/sends, and
    Qlara's webhook "loses" one final status in ten: a fake Qlara API, served on loopback
    by the demo, knows them, and the reconciler fills them in by polling it (after 20 s
    unless --reconcile-after says otherwise). Every ten seconds a line compares what was
    posted with what the sidecar recorded and filled. Data goes to ./qlara-demo-data unless
    --data-dir says otherwise; logs show warnings only unless --log-level says otherwise.
    The demo never polls the real Qlara. Ctrl-C stops everything.

    \b
    Example:
        qlara-sidecar demo --port 8080
    then, in another terminal:
        curl -H "Authorization: Bearer $READ_TOKEN" http://127.0.0.1:8080/v1/stats/webhook
    """
    import os

    from sidecar.settings import env_name
    from sidecar.simulate import run_demo

    for name, value in DEMO_DEFAULTS.items():
        if flags.get(name) is None and env_name(name) not in os.environ:
            flags[name] = value
    sys.exit(run_demo(_settings(flags)))


def _announce_generated(settings: Settings, tokens: Tokens) -> None:
    """Print a token generated just now, the one time it is shown."""
    stored = tokens_path(settings.data_dir)
    if "webhook" in tokens.generated and tokens.webhook is not None:
        click.echo(
            f"New webhook token (shown only this once; kept in {stored}): "
            f"{tokens.webhook.get_secret_value()}"
        )
    if "read" in tokens.generated:
        click.echo(
            f"New read token (shown only this once; kept in {stored}): "
            f"{tokens.read.get_secret_value()}"
        )
    if "send" in tokens.generated and tokens.send is not None:
        click.echo(
            f"New send token, for POST /v1/sends (shown only this once; kept in {stored}): "
            f"{tokens.send.get_secret_value()}"
        )
