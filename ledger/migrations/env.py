"""Alembic environment for the ledger.

Online only: the ledger hands over an open connection in ``config.attributes["connection"]``
(already inside the transaction that holds the migration lock). For maintainers running the
``alembic`` command by hand, a ``sqlalchemy.url`` main option is used instead.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from ledger.engine import build_engine
from ledger.schema import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Upgrade through the handed-over connection, or one opened from ``sqlalchemy.url``."""
    connection = context.config.attributes.get("connection")
    if isinstance(connection, Connection):
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection handed over and no sqlalchemy.url configured")
    engine = build_engine(url)
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("the ledger's migrations run online only")
run_migrations_online()
