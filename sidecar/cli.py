"""The ``qlara-sidecar`` command line. A leaf: nothing imports it.

Every command takes the settings as flags (``--port``, ``--data-dir``, ``--workers`` ...)
generated from :class:`~sidecar.settings.Settings`; a flag beats its ``QLARA_SIDECAR_*``
variable, which beats the default. Secrets are read from the environment only, so they
never appear in a process list or a shell history.

An invalid setting ends the command with status 2 and one line naming the variable.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar, get_args, get_origin

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

F = TypeVar("F", bound=Callable[..., Any])

EXIT_USAGE = 2


def _metavar(annotation: Any) -> str:
    if get_origin(annotation) is not None and type(None) not in get_args(annotation):
        args = get_args(annotation)
        if all(isinstance(a, str) for a in args):
            return "|".join(args).upper()
        return "CIDR,..."
    if annotation is int:
        return "INTEGER"
    if annotation is float:
        return "SECONDS"
    return "TEXT"


def settings_options(func: F) -> F:
    """Add one flag per non-secret setting; the values arrive in ``**settings``."""
    for name, info in reversed(list(Settings.model_fields.items())):
        if name in SECRET_FIELDS:
            continue
        help_text = f"{info.description} [env: {env_name(name)}]"
        if info.annotation is bool:
            flag = flag_name(name)
            option = click.option(
                f"{flag}/--no-{flag.removeprefix('--')}",
                name,
                default=None,
                help=help_text,
            )
        else:
            option = click.option(
                flag_name(name),
                name,
                default=None,
                metavar=_metavar(info.annotation),
                help=help_text,
            )
        func = option(func)
    return func


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
@settings_options
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


@main.command()
@click.option(
    "--processes",
    type=click.IntRange(1, 256),
    default=None,
    help="Receiver processes. [default: RECEIVER_PROCESSES]",
)
@click.option("--skip-migrate", is_flag=True, hidden=True, help="The parent already migrated.")
@settings_options
def receiver(processes: int | None, skip_migrate: bool, **flags: Any) -> None:
    """Run the receiver only: the webhook and the read API over HTTP.

    Needs QLARA_SIDECAR_REDIS_URL and QLARA_SIDECAR_DATABASE_URL (shared with the workers).

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
    sys.exit(run_receiver(settings, tokens, processes=processes or settings.receiver_processes))


@main.command()
@click.option(
    "--processes",
    type=click.IntRange(1, 256),
    default=None,
    help="Worker processes. [default: WORKERS]",
)
@settings_options
def worker(processes: int | None, **flags: Any) -> None:
    """Run workers only: take events off the queue and record them in the ledger.

    Needs QLARA_SIDECAR_REDIS_URL; the ledger is QLARA_SIDECAR_DATABASE_URL (default: SQLite
    under the data directory). With --processes N, N worker processes are started and each
    is restarted on its own if it dies.

    \b
    Example:
        QLARA_SIDECAR_REDIS_URL=redis://10.0.0.5:6379/0 qlara-sidecar worker --processes 4
    """
    from sidecar import wiring
    from sidecar.worker_role import run_workers

    settings = _settings(flags)
    try:
        redis = require(settings, "redis_url")
    except SettingsError as exc:
        _usage_error(str(exc))
    sys.exit(
        run_workers(
            settings,
            processes=processes or settings.workers,
            redis=redis,
            database=wiring.database_url(settings),
        )
    )


@main.command()
@click.option(
    "--limit",
    type=click.IntRange(0, None),
    default=None,
    help="Replay at most this many dead letters (oldest first). [default: all]",
)
@settings_options
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


@main.command()
@settings_options
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
@settings_options
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
