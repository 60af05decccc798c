"""The ledger's SQLite datetime text is exactly what SQLAlchemy's own DATETIME type writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from ledger.timestamps import UTCDateTime

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
