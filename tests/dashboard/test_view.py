"""The view in the URL: durations, channels, ranges; unreadable values dropped and named."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dashboard import format_duration, parse_duration
from dashboard.view import View, bucket_size, read_view

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5m", timedelta(minutes=5)),
        ("1h30m", timedelta(minutes=90)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(days=14)),
        (" 30S ", timedelta(seconds=30)),
    ],
)
def test_durations_read_the_prometheus_way(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "5", "m5", "1.5h", "30m1h", "1h1h", "0m", "-5m"])
def test_anything_else_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match=r"duration|units"):
        parse_duration(text)


@given(st.integers(min_value=1, max_value=10**8))
def test_a_formatted_duration_reads_back_as_itself(seconds: int) -> None:
    value = timedelta(seconds=seconds)
    assert parse_duration(format_duration(value)) == value


def test_no_parameter_is_every_channel_over_the_last_hour() -> None:
    view = read_view({})

    assert view == View()
    assert view.span(NOW) == (NOW - timedelta(hours=1), NOW)
    assert view.previous_span(NOW) == (NOW - timedelta(hours=2), NOW - timedelta(hours=1))
    assert view.to_query() == {}


def test_every_parameter_is_read_and_written_back() -> None:
    query = {
        "channel": "WhatsApp",
        "window": "6h",
        "status": "error",
        "search": " otp-1 ",
        "message": "m-9",
    }

    view = read_view(query)

    assert (view.channel, view.window, view.status, view.search, view.message) == (
        "whatsapp",
        "6h",
        "error",
        "otp-1",
        "m-9",
    )
    assert view.to_query() == {
        "channel": "whatsapp",
        "window": "6h",
        "status": "error",
        "search": "otp-1",
        "message": "m-9",
    }


def test_from_and_to_set_a_fixed_range_that_wins_over_the_window() -> None:
    view = read_view({"from": "2025-03-01T10:00:00Z", "to": "2025-03-01T11:00:00", "window": "7d"})

    assert view.span(NOW) == (NOW - timedelta(hours=2), NOW - timedelta(hours=1))
    # the window is not written back: from and to win over it
    assert view.to_query() == {"from": "2025-03-01T10:00:00Z", "to": "2025-03-01T11:00:00Z"}


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ({"channel": "pigeon"}, "channel"),
        ({"status": "lost"}, "status"),
        ({"window": "soon"}, "window"),
        ({"from": "yesterday", "to": "2025-03-01T11:00:00Z"}, "from"),
        ({"from": "2025-03-01T10:00:00Z"}, "from and to"),
        ({"from": "2025-03-01T11:00:00Z", "to": "2025-03-01T10:00:00Z"}, "before"),
        ({"window": "99999999999d"}, "window"),
        ({"window": "999999999d"}, "window"),
        ({"window": "9" * 5000 + "s"}, "window"),
        ({"from": "0001-01-01T00:00:00+01:00", "to": "2025-03-01T11:00:00Z"}, "from"),
        ({"from": "2025-03-01T11:00:00Z", "to": "9999-12-31T23:59:59-01:00"}, "to"),
        ({"from": "0001-01-01T00:00:00Z", "to": "0001-01-02T00:00:00Z"}, "from"),
        ({"from": "1900-01-01T00:00:00Z", "to": "2025-03-01T11:00:00Z"}, "from and to"),
    ],
)
def test_an_unreadable_parameter_falls_back_and_is_named(
    query: dict[str, str], problem: str
) -> None:
    view = read_view(query)

    assert view.span(NOW) == (NOW - timedelta(hours=1), NOW)
    assert view.previous_span(NOW) == (NOW - timedelta(hours=2), NOW - timedelta(hours=1))
    assert view.channel is None
    assert view.status is None
    assert any(problem in p for p in view.problems)


def test_buckets_are_whole_minutes_about_120_to_a_chart() -> None:
    assert bucket_size(NOW - timedelta(hours=1), NOW) == timedelta(minutes=1)
    assert bucket_size(NOW - timedelta(days=1), NOW) == timedelta(minutes=12)
    assert bucket_size(NOW - timedelta(minutes=5), NOW) == timedelta(minutes=1)
