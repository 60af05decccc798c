"""Many rows through one statement, for the widest statements of the write path.

``Connection.execute(stmt, [dict, ...])`` builds and processes a parameter dict per row;
for the events insert and the messages update, that bookkeeping cost as much as the
database's own work. :func:`execute_rows` compiles the statement once per dialect, applies
the columns' own bind processors (the same conversions ``execute`` would make) to positional
tuples, and hands them to the driver's ``executemany``. Same SQL, same values, less Python.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.dml import UpdateBase

_Processor = Callable[[Any], Any] | None
#: Compiled SQL and processors by (dialect, statement, keys); holding the statement keeps
#: its identity from being reused.
_compiled: dict[tuple[str, UpdateBase, tuple[str, ...]], tuple[str, list[_Processor]]] = {}


def execute_rows(
    conn: Connection,
    stmt: UpdateBase,
    keys: Sequence[str],
    rows: Sequence[Sequence[Any]],
) -> None:
    """Run ``stmt`` once per row: ``keys`` name its bound parameters (for an insert, the
    columns it sets) in the order the compiled statement binds them, and each row holds
    their values in that order. ``stmt`` should be a module-level constant: it is compiled
    once per dialect and kept."""
    if not rows:
        return
    sql, processors = _compile(conn.dialect, stmt, keys)
    if any(processors):
        converted = [
            tuple(v if p is None else p(v) for p, v in zip(processors, row, strict=True))
            for row in rows
        ]
    else:
        converted = [tuple(row) for row in rows]
    conn.exec_driver_sql(sql, converted)


def _compile(
    dialect: Dialect,
    stmt: UpdateBase,
    keys: Sequence[str],
) -> tuple[str, list[_Processor]]:
    cache_key = (dialect.name, stmt, tuple(keys))
    found = _compiled.get(cache_key)
    if found is not None:
        return found
    # The same dialect, binding by position: rows are tuples, not dicts.
    dialect_class: Any = type(dialect)
    positional = dialect_class(paramstyle="qmark" if dialect.name == "sqlite" else "format")
    compiled = stmt.compile(dialect=positional, column_keys=list(keys))
    order = list(compiled.positiontup or ())
    if order != list(keys):
        raise ValueError(f"rows must give the statement's parameters in order {order}")
    processors: list[_Processor] = [
        compiled.binds[key].type._cached_bind_processor(dialect) for key in order
    ]
    _compiled[cache_key] = (compiled.string, processors)
    return _compiled[cache_key]
