"""The ledger's errors, and the one place database failures are sorted into them.

:class:`LedgerUnavailable` means "try again later": the database is down, unreachable,
locked or chose this transaction as a deadlock victim. Callers (the workers) let their retry
policy handle it. :class:`LedgerRefused` means a value cannot be stored at all (a driver
``DataError``): retrying fails the same way. Anything else (a violated constraint, a
programming error) propagates unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc as sa_exc

_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'|\([^)]*\)=\([^)]*\)")


class LedgerError(Exception):
    """Root of the ledger's errors."""


class LedgerUnavailable(LedgerError):
    """The database cannot serve the call now (down, unreachable, locked): transient, retry."""


class LedgerRefused(LedgerError):
    """The database refused a value it cannot store (a driver ``DataError``): retrying the
    same data fails the same way."""


#: PostgreSQL's SQLSTATE class 54, "program limit exceeded": an OperationalError to the
#: driver, but caused by the data (an index row too large, too many columns), not transient.
_PROGRAM_LIMIT_EXCEEDED = "54"
#: SQLite reports some programming errors as OperationalError; these are not transient.
_SQLITE_PROGRAMMING_ERRORS = ("no such table", "no such column", "syntax error")


@contextmanager
def unavailable_on_operational_errors() -> Iterator[None]:
    """Translate operational database failures into :class:`LedgerUnavailable`.

    The message names the driver's error class and text only: statements and their
    parameters (which may hold phone numbers) are never part of it.
    """
    try:
        yield
    except sa_exc.OperationalError as exc:
        text = str(exc.orig)
        if any(marker in text for marker in _SQLITE_PROGRAMMING_ERRORS):
            raise
        if str(getattr(exc.orig, "sqlstate", "") or "").startswith(_PROGRAM_LIMIT_EXCEEDED):
            # PostgreSQL files "index row size exceeds the maximum" and the like under
            # OperationalError, but it is this data, not the server: retrying will not help.
            raise LedgerRefused(f"{type(exc.orig).__name__}: a value exceeds a limit") from exc
        raise LedgerUnavailable(f"{type(exc.orig).__name__}: {text.strip()}") from exc
    except sa_exc.DataError as exc:
        # Drivers quote the offending value (it may be a phone number): keep the words only.
        lines = str(exc.orig).strip().splitlines()
        words = _QUOTED.sub("…", lines[0]) if lines else ""
        raise LedgerRefused(f"{type(exc.orig).__name__}: {words}") from exc
    except sa_exc.DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        raise LedgerUnavailable(f"connection lost: {type(exc.orig).__name__}") from exc
    except sa_exc.TimeoutError as exc:  # no pooled connection free in time
        raise LedgerUnavailable(f"connection pool exhausted: {exc}") from exc
