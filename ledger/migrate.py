"""Bringing a database to the ledger's schema with Alembic, from inside the package.

No ``alembic.ini`` is needed: the script location is this package's ``migrations`` folder
and the connection is handed to ``env.py`` directly. The whole upgrade runs in one
transaction; on PostgreSQL it first takes a transaction-level advisory lock, and on SQLite
the transaction takes the write lock at BEGIN, so two processes starting at once upgrade one
after the other and the second finds nothing to do.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import Engine, text

from ledger.engine import WRITE_OPTION

# Alembic (and Mako under it) is imported where a migration runs: the processes that only
# use a migrated ledger, the receivers' among them, need not carry it.
if TYPE_CHECKING:
    from alembic.config import Config

#: Arbitrary, fixed key of the advisory lock that serialises migrations ("qlarmigr").
MIGRATION_LOCK_KEY = 0x716C61726D696772

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

_log = structlog.get_logger()


def alembic_config() -> Config:
    """An Alembic config pointing at the packaged migrations."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade_to_head(engine: Engine) -> None:
    """Run every pending migration. Idempotent; safe when several processes call it at once.

    Says what it did in one line: ``ledger.migrated`` with the revisions it went from and to
    when it applied any (info), ``ledger.current`` otherwise (debug). Alembic's own lines
    ("Context impl", "Running upgrade", once per process that checks) are kept below
    warning, so that `up`, whose every process checks, logs a migration once.
    """
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    config = alembic_config()
    quiet = logging.getLogger("alembic")
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        with engine.execution_options(**{WRITE_OPTION: True}).begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
            before = MigrationContext.configure(conn).get_current_revision()
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
            after = MigrationContext.configure(conn).get_current_revision()
    finally:
        quiet.setLevel(level)
    if before == after:
        _log.debug("ledger.current", backend=engine.dialect.name, revision=after)
    else:
        _log.info("ledger.migrated", backend=engine.dialect.name, from_revision=before, to=after)
