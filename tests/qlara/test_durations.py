"""The one duration grammar, and what each of its two readers takes around it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qlara.durations import (
    EXPLORER_UNITS,
    PROMETHEUS_UNITS,
    UNIT_SECONDS,
    format_duration,
    format_prometheus,
    parse_duration,
    prometheus_seconds,
)

#: timedelta's largest whole number of seconds.
MAX_TIMEDELTA_SECONDS = timedelta.max // timedelta(seconds=1)


def spelled(units: tuple[str, ...]) -> st.SearchStrategy[tuple[str, int]]:
    """A duration written in some of ``units`` (largest first, each once, counts above
    zero), with its length in seconds (milliseconds left out: they are not whole)."""
    whole = [unit for unit in units if unit != "ms"]
    return (
        st.lists(st.sampled_from(whole), min_size=1, unique=True)
        .map(lambda chosen: sorted(chosen, key=whole.index))
        .flatmap(
            lambda chosen: st.tuples(
                *(st.integers(1, 10_000).map(lambda n, u=u: (n, u)) for u in chosen)
            )
        )
        .map(
            lambda parts: (
                "".join(f"{n}{u}" for n, u in parts),
                sum(n * int(UNIT_SECONDS[u]) for n, u in parts),
            )
        )
    )


@given(st.integers(min_value=0, max_value=10**12))
def test_a_prometheus_duration_reads_back_as_itself(total: int) -> None:
    assert prometheus_seconds(format_prometheus(total)) == total


@given(st.integers(min_value=1, max_value=MAX_TIMEDELTA_SECONDS))
def test_an_explorer_duration_reads_back_as_itself(total: int) -> None:
    value = timedelta(seconds=total)
    assert parse_duration(format_duration(value)) == value


@given(spelled(EXPLORER_UNITS))
def test_both_readers_read_the_units_they_share_the_same_way(case: tuple[str, int]) -> None:
    text, total = case
    assert prometheus_seconds(text) == total
    assert parse_duration(text) == timedelta(seconds=total)


@given(spelled(PROMETHEUS_UNITS))
def test_any_prometheus_spelling_is_read(case: tuple[str, int]) -> None:
    text, total = case
    assert prometheus_seconds(text) == total


@pytest.mark.parametrize(("text", "total"), [("1y", 31_536_000.0), ("1500ms", 1.5), ("0s", 0.0)])
def test_only_the_prometheus_reader_takes_years_milliseconds_and_zero(
    text: str, total: float
) -> None:
    assert prometheus_seconds(text) == total
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(("text", "minutes"), [(" 5m", 5), ("5M", 5), ("1H30M ", 90), ("\t1h", 60)])
def test_only_the_explorer_forgives_spaces_and_upper_case(text: str, minutes: int) -> None:
    assert parse_duration(text) == timedelta(minutes=minutes)
    with pytest.raises(ValueError, match="not a Prometheus duration"):
        prometheus_seconds(text)


@pytest.mark.parametrize("text", ["", "15", "m", "1.5h", "15 m", "1m1h", "1h1h", "-5m", "5x"])
def test_both_readers_refuse_what_is_not_the_grammar(text: str) -> None:
    with pytest.raises(ValueError, match="not a Prometheus duration"):
        prometheus_seconds(text)
    with pytest.raises(ValueError, match=r"not a duration|units must go"):
        parse_duration(text)


def test_the_explorer_says_when_only_the_order_of_the_units_is_wrong() -> None:
    with pytest.raises(ValueError, match="units must go from largest to smallest, each once"):
        parse_duration("30m1h")


def test_the_explorer_refuses_a_duration_past_what_a_timedelta_holds() -> None:
    with pytest.raises(ValueError, match="too long a duration"):
        parse_duration("9999999999999w")


def test_the_writers_differ_in_weeks_and_in_nothing() -> None:
    assert format_prometheus(604_800) == "1w"
    assert format_duration(timedelta(weeks=1)) == "7d"
    assert format_prometheus(0) == "0s"
    with pytest.raises(ValueError, match="longer than zero"):
        format_duration(timedelta())


@pytest.mark.parametrize("text", ["15m\n", "\n", " 15m", "\u0661\u0665m", "1h 30m"])
def test_a_rule_s_duration_is_the_grammar_alone_nothing_around_it(text: str) -> None:
    # A value the thresholds accept is written into a rule file as it is.
    with pytest.raises(ValueError, match="not a Prometheus duration"):
        prometheus_seconds(text)
