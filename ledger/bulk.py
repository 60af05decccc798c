"""Many rows through one statement, for the widest statements of the write path.

``Connection.execute(stmt, [dict, ...])`` builds and processes a parameter dict per row;
for the events insert and the messages update, that bookkeeping cost as much as the
database's own work. :func:`execute_rows` and :func:`execute_mappings` compile the statement
once per dialect, apply the columns' own bind processors (the same conversions ``execute``
would make) to positional tuples, and hand them to the driver's ``executemany``. Same SQL,
same values, less Python.

:func:`execute_mappings` takes each row as a mapping and reads its values by name, in the
order the statement binds them: a key list that gains a column, or a row builder that
lists its values in another order, cannot shift a value into the wrong column.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any, NoReturn

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.dml import UpdateBase

_Processor = Callable[[Any], Any] | None


class _Compiled:
    """A statement compiled for one dialect and set of parameters, binding by position."""

    __slots__ = ("in_order", "order", "processed", "processors", "same_keys", "sql", "values")

    def __init__(
        self, sql: str, order: list[str], processors: list[_Processor], keys: Sequence[str]
    ) -> None:
        self.sql = sql
        #: The bound parameters, in the order the SQL binds them.
        self.order = order
        #: Whether ``keys`` (part of the cache key) name them in that order, or at all.
        self.in_order = order == list(keys)
        self.same_keys = set(order) == set(keys)
        self.processors = processors
        #: (position, processor) of the parameters that have a processor.
        self.processed = [(i, p) for i, p in enumerate(processors) if p is not None]
        #: A mapping's values, in :attr:`order`, as a tuple.
        self.values: Callable[[Mapping[str, Any]], tuple[Any, ...]] = (
            itemgetter(*order) if len(order) > 1 else lambda row: (row[order[0]],)
        )


#: Compiled statements by (dialect, statement, keys); holding the statement keeps its
#: identity from being reused.
_compiled: dict[tuple[str, UpdateBase, tuple[str, ...]], _Compiled] = {}


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
    compiled = _compile(conn.dialect, stmt, keys)
    if not compiled.in_order:
        raise ValueError(f"rows must give the statement's parameters in order {compiled.order}")
    processors = compiled.processors
    if compiled.processed:
        converted = [
            tuple(v if p is None else p(v) for p, v in zip(processors, row, strict=True))
            for row in rows
        ]
    else:
        converted = [tuple(row) for row in rows]
    conn.exec_driver_sql(compiled.sql, converted)


def execute_mappings(
    conn: Connection,
    stmt: UpdateBase,
    keys: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
) -> None:
    """Run ``stmt`` once per row: ``keys`` name its bound parameters (for an insert, the
    columns it sets), in any order, and each row maps exactly those keys to their values.
    A row that lacks one of ``keys`` or has another, or a key the statement does not bind,
    raises :class:`ValueError`. ``stmt`` should be a module-level constant: it is compiled
    once per dialect and kept."""
    if not rows:
        return
    compiled = _compile(conn.dialect, stmt, keys)
    if not compiled.same_keys:
        raise ValueError(f"the statement binds {compiled.order}, not {list(keys)}")
    width, values, processed = len(keys), compiled.values, compiled.processed
    converted = []
    for row in rows:
        try:
            items = values(row)
        except KeyError:
            _refuse(row, keys)
        if len(row) != width:
            _refuse(row, keys)
        if processed:
            listed = list(items)
            for index, process in processed:
                listed[index] = process(listed[index])
            items = tuple(listed)
        converted.append(items)
    conn.exec_driver_sql(compiled.sql, converted)


def _refuse(row: Mapping[str, Any], keys: Sequence[str]) -> NoReturn:
    missing, other = sorted(set(keys) - row.keys()), sorted(row.keys() - set(keys))
    raise ValueError(f"a row lacks {missing} and has {other}: rows must have {list(keys)}")


def _compile(dialect: Dialect, stmt: UpdateBase, keys: Sequence[str]) -> _Compiled:
    cache_key = (dialect.name, stmt, tuple(keys))
    found = _compiled.get(cache_key)
    if found is not None:
        return found
    # The same dialect, binding by position: rows are tuples, not dicts.
    dialect_class: Any = type(dialect)
    positional = dialect_class(paramstyle="qmark" if dialect.name == "sqlite" else "format")
    compiled = stmt.compile(dialect=positional, column_keys=list(keys))
    order = list(compiled.positiontup or ())
    processors: list[_Processor] = [
        compiled.binds[key].type._cached_bind_processor(dialect) for key in order
    ]
    _compiled[cache_key] = _Compiled(compiled.string, order, processors, keys)
    return _compiled[cache_key]
