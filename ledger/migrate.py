"""Bringing a database to the ledger's schema with Alembic, from inside the package.

No ``alembic.ini`` is needed: the script location is this package's ``migrations`` folder
and the connection is handed to ``env.py`` directly. The whole upgrade runs in one
transaction; on PostgreSQL it first takes a transaction-level advisory lock, and on SQLite
the transaction takes the write lock at BEGIN, so two processes starting at once upgrade one
after the other and the second finds nothing to do.
"""

from __future__ import annotations

from pathlib import Path

import structlog
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

from ledger.engine import WRITE_OPTION

#: Arbitrary, fixed key of the advisory lock that serialises migrations ("qlarmigr").
MIGRATION_LOCK_KEY = 0x716C61726D696772

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

_log = structlog.get_logger()


def alembic_config() -> Config:
    """An Alembic config pointing at the packaged migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade_to_head(engine: Engine) -> None:
    """Run every pending migration. Idempotent; safe when several processes call it at once."""
    config = alembic_config()
    with engine.execution_options(**{WRITE_OPTION: True}).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    _log.info("ledger.migrated", backend=engine.dialect.name)
