"""The ledger's SQLite datetime text is exactly what SQLAlchemy's own DATETIME type writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from ledger.timestamps import _TEXTS, _TEXTS_MAX, UTCDateTime

_DIALECT = sqlite.dialect()
_OURS_IN = UTCDateTime().bind_processor(_DIALECT)
_OURS_OUT = UTCDateTime().result_processor(_DIALECT, None)
_STOCK_IN = sqlite.DATETIME().bind_processor(_DIALECT)
_STOCK_OUT = sqlite.DATETIME().result_processor(_DIALECT, None)

aware = st.datetimes(
    min_value=datetime(1000, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-9, minutes=-30))]
    ),
)


@given(aware)
def test_the_text_is_the_stock_sqlite_datetime_text_of_the_utc_instant(value: datetime) -> None:
    assert _OURS_IN is not None
    assert _STOCK_IN is not None
    naive_utc = value.astimezone(UTC).replace(tzinfo=None)
    assert _OURS_IN(value) == _STOCK_IN(naive_utc)


@given(aware)
def test_reading_gives_back_the_same_instant_in_utc(value: datetime) -> None:
    assert _OURS_IN is not None
    assert _OURS_OUT is not None
    assert _STOCK_OUT is not None
    text = _OURS_IN(value)
    back = _OURS_OUT(text)
    assert back == value
    assert back.tzinfo is UTC
    # what the stock type reads from the same text is the same naive UTC instant
    assert _STOCK_OUT(text) == back.replace(tzinfo=None)


def test_text_without_microseconds_written_by_sqlite_itself_is_read() -> None:
    assert _OURS_OUT is not None
    assert _OURS_OUT("2025-04-08 14:30:00") == datetime(2025, 4, 8, 14, 30, tzinfo=UTC)


def test_a_naive_datetime_is_refused_and_none_passes() -> None:
    assert _OURS_IN is not None
    assert _OURS_OUT is not None
    with pytest.raises(ValueError, match="timezone-aware"):
        _OURS_IN(datetime(2025, 4, 8, 14, 30))
    assert _OURS_IN(None) is None
    assert _OURS_OUT(None) is None


@given(aware)
def test_a_remembered_text_is_that_of_the_same_instant(value: datetime) -> None:
    # Bound twice and in other zones, an instant gets its own UTC text each time; the same
    # wall time as a naive datetime is still refused.
    assert _OURS_IN is not None
    assert _STOCK_IN is not None
    expected = _STOCK_IN(value.astimezone(UTC).replace(tzinfo=None))
    for zone in (UTC, timezone(timedelta(hours=5, minutes=45)), UTC):
        assert _OURS_IN(value.astimezone(zone)) == expected
    with pytest.raises(ValueError, match="timezone-aware"):
        _OURS_IN(value.astimezone(UTC).replace(tzinfo=None))


class _LeavingSummerTime(tzinfo):
    """A zone whose every wall time happens twice, as 02:30 does in Berlin on 2025-10-26:
    first at +02:00 (``fold=0``), then at +01:00 (``fold=1``)."""

    def utcoffset(self, dt: datetime | None) -> timedelta:
        return timedelta(hours=1 if dt is not None and dt.fold else 2)

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(0)


def test_the_two_folds_of_a_repeated_wall_time_are_an_hour_apart() -> None:
    # Equal as datetimes (same zone, same wall time), an hour apart as instants.
    assert _OURS_IN is not None
    first = datetime(2025, 10, 26, 2, 30, tzinfo=_LeavingSummerTime(), fold=0)
    second = first.replace(fold=1)
    assert first == second

    assert _OURS_IN(first) == "2025-10-26 00:30:00.000000"
    assert _OURS_IN(second) == "2025-10-26 01:30:00.000000"
    assert _OURS_IN(first) == "2025-10-26 00:30:00.000000"


def test_the_remembered_texts_are_bounded() -> None:
    assert _OURS_IN is not None
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for n in range(_TEXTS_MAX + 10):
        _OURS_IN(start + timedelta(microseconds=n))

    assert 0 < len(_TEXTS) <= _TEXTS_MAX
    assert _OURS_IN(start) == "2026-01-01 00:00:00.000000"
