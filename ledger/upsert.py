"""INSERT ... ON CONFLICT for whichever backend a connection speaks."""

from __future__ import annotations

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def insert_for(conn: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An insert on ``table`` that supports ``on_conflict_do_nothing``/``do_update``."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
