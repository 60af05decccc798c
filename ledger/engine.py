"""Database URLs and engines: SQLite by default, PostgreSQL (psycopg 3) at scale.

SQLite is opened in WAL mode (readers never block the writer) with a 5 s busy timeout and
``synchronous=FULL``. FULL because the workers acknowledge a receipt to the broker as soon as
the ledger commits: with NORMAL, a power loss may drop the last commits from the WAL after the
broker has already forgotten the receipt, and those events would be gone for good. FULL syncs
the WAL on every commit, so an acknowledged event survives the machine going down.

SQLite writers begin with ``BEGIN IMMEDIATE`` (they take the write lock up front and queue on
the busy timeout) instead of a deferred BEGIN that could fail with SQLITE_BUSY half-way
through a transaction; readers begin deferred and never wait.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry

#: How long an SQLite writer waits for the write lock before the call fails as unavailable.
SQLITE_BUSY_TIMEOUT_MS = 5000

#: How long a PostgreSQL connection attempt may take.
POSTGRES_CONNECT_TIMEOUT_S = 5

#: The execution option that makes a SQLite transaction take the write lock at BEGIN.
WRITE_OPTION = "ledger_write"

_POSTGRES_DRIVERS = {"postgres", "postgresql", "postgresql+psycopg"}
_SQLITE_DRIVERS = {"sqlite", "sqlite+pysqlite"}


def default_sqlite_url(data_dir: Path) -> str:
    """The ledger's SQLite URL inside ``data_dir``: ``sqlite:///<data_dir>/ledger.sqlite3``.

    The directory is not created here: that is the caller's set-up.
    """
    return f"sqlite:///{Path(data_dir) / 'ledger.sqlite3'}"


def normalise_url(url: str) -> URL:
    """Parse ``url``, pointing every PostgreSQL spelling at the psycopg 3 driver.

    Accepted: ``sqlite:///path``, ``postgresql+psycopg://``, ``postgresql://`` and
    ``postgres://``. Raises ``ValueError`` for any other scheme.
    """
    parsed = make_url(url)
    if parsed.drivername in _POSTGRES_DRIVERS:
        return parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername in _SQLITE_DRIVERS:
        return parsed
    raise ValueError(
        f"unsupported ledger database URL scheme {parsed.drivername!r}: use sqlite:///PATH, "
        "postgresql://, postgres:// or postgresql+psycopg://"
    )


def build_engine(url: str) -> Engine:
    """An engine for ``url`` with the ledger's connection settings.

    Statement parameters are hidden from logs and error messages (they hold phone numbers).
    """
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            parsed,
            hide_parameters=True,
            connect_args={
                "check_same_thread": False,
                "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
            },
        )
        event.listen(engine, "connect", _configure_sqlite_connection)
        event.listen(engine, "begin", _begin_sqlite_transaction)
        return engine
    let_psycopg_cache_batch_statements()
    return create_engine(
        parsed,
        hide_parameters=True,
        pool_pre_ping=True,
        connect_args={"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S},
    )


#: The longest statement (bytes) and the most parameters whose converted form psycopg keeps
#: (its own limits: 4,096 and 50). The ledger's widest batch statement, 64 message rows,
#: is about 40 KB with 1,300 parameters; the 59 shapes of its write path held 1 MiB.
PSYCOPG_CACHED_BYTES = 49_152
PSYCOPG_CACHED_PARAMS = 1_536


def let_psycopg_cache_batch_statements() -> None:
    """Let psycopg keep the converted form of the ledger's batch statements.

    On every execute psycopg turns a query's ``%(name)s`` placeholders into ``$n`` with a
    regular expression, and keeps the result (128 queries, least recently used first) only
    for a query of at most 4,096 bytes and 50 parameters. The ledger's multi-row inserts and
    ``IN`` lists are longer, but come in few shapes (rows in pieces of powers of two, lists
    padded to one, see ``ledger.recording``), so they can all be kept: py-spy put 16% of a
    PostgreSQL worker's CPU in converting them again. psycopg offers no setting for this;
    the limits are module constants it reads at each execute, raised here, never lowered.
    """
    try:
        from psycopg import _queries
    except ImportError:  # a psycopg without that module: its own limits stay
        return
    for name, value in (
        ("MAX_CACHED_STATEMENT_LENGTH", PSYCOPG_CACHED_BYTES),
        ("MAX_CACHED_STATEMENT_PARAMS", PSYCOPG_CACHED_PARAMS),
    ):
        if getattr(_queries, name, value) < value:
            setattr(_queries, name, value)


def _configure_sqlite_connection(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    if not isinstance(dbapi_conn, sqlite3.Connection):
        raise TypeError(f"expected a sqlite3 connection, got {type(dbapi_conn).__name__}")
    # Take BEGIN out of the driver's hands: the "begin" listener emits it, so SQLAlchemy's
    # transactions are SQLite's transactions (see the SQLAlchemy SQLite dialect docs,
    # "Serializable isolation / Savepoints / Transactional DDL").
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=FULL")
    finally:
        cursor.close()


def _begin_sqlite_transaction(conn: Any) -> None:
    if conn.get_execution_options().get(WRITE_OPTION, False):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")
