"""Time as the ledger stores it: UTC instants, whatever the backend.

SQLite has no time zone type, so every datetime is stored as naive UTC there; PostgreSQL
stores ``timestamptz``. Either way, every datetime the ledger returns is timezone-aware UTC,
and every datetime it is given must be timezone-aware (a naive one is refused rather than
guessed).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.types import DateTime, TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """A column type that stores UTC and hands back timezone-aware UTC datetimes.

    On SQLite the value is the text SQLAlchemy's own SQLite ``DATETIME`` type writes
    (``YYYY-MM-DD HH:MM:SS.ffffff``, naive UTC), so comparisons and ordering stay those of
    the text; it is written and read here directly, with ``datetime.isoformat`` and
    ``datetime.fromisoformat``, because the dialect's generic conversion costs several times
    more and a worker converts several datetimes per recorded event.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name == "sqlite":
            return _sqlite_text
        return super().bind_processor(dialect)

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any] | None:
        if dialect.name == "sqlite":
            return _sqlite_datetime
        return super().result_processor(dialect, coltype)

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = require_aware(value, "a stored datetime")
        if dialect.name == "sqlite":
            # SQLite's DATETIME drops the offset without converting: convert first.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {type(value).__name__}")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


#: The texts of the UTC datetimes bound last: a recorded event's times are bound several
#: times in one transaction (its event row, its message's row, the receipt's), and a lookup
#: costs a twentieth of ``isoformat``. Emptied when full.
_TEXTS: dict[datetime, str] = {}
_TEXTS_MAX = 8192


def _sqlite_text(value: datetime | None) -> str | None:
    """An aware datetime as SQLite's DATETIME text, in UTC (naive: refused)."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        # Only UTC values are remembered: two wall times of another zone that differ only in
        # ``fold`` are equal as keys, yet are an hour apart.
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("a stored datetime must be timezone-aware")
        return _utc_text(value.astimezone(UTC))
    text = _TEXTS.get(value)
    if text is None:
        text = _utc_text(value)
        if len(_TEXTS) >= _TEXTS_MAX:
            _TEXTS.clear()
        _TEXTS[value] = text
    return text


def _utc_text(value: datetime) -> str:
    # "YYYY-MM-DD HH:MM:SS.ffffff+00:00" without its offset; cheaper than replace(tzinfo=None)
    return value.isoformat(" ", "microseconds")[:26]


def _sqlite_datetime(value: Any) -> datetime | None:
    """SQLite's DATETIME text (naive UTC) as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    raise TypeError(f"expected a datetime from the database, got {type(value).__name__}")


def require_aware(value: datetime, name: str) -> datetime:
    """Return ``value`` in UTC. Raises ``ValueError`` when it has no time zone."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return value.astimezone(UTC)


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def from_unix(seconds: float) -> datetime:
    """A unix time in seconds (as :attr:`qlara.Receipt.received_at`) as an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, tz=UTC)
