"""Time as the ledger stores it: UTC instants, whatever the backend.

SQLite has no time zone type, so every datetime is stored as naive UTC there; PostgreSQL
stores ``timestamptz``. Either way, every datetime the ledger returns is timezone-aware UTC,
and every datetime it is given must be timezone-aware (a naive one is refused rather than
guessed).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.types import DateTime, TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """A column type that stores UTC and hands back timezone-aware UTC datetimes."""

    impl = DateTime(timezone=True)
    cache_ok = True

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
