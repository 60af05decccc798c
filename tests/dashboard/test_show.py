"""How figures are written: units that move with the size of the number."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dashboard.figures import RatePoint
from dashboard.show import delta, per_event_shares


@pytest.mark.parametrize(
    ("this", "before", "shown"),
    [
        (0.196, 0.165, "+31 ms vs previous window"),
        (0.165, 0.196, "-31 ms vs previous window"),
        (12.5, 10.0, "+2.5 s vs previous window"),
        (305.0, 5.0, "+5.0 min vs previous window"),
        (0.5, 0.5, "+0 ms vs previous window"),
    ],
)
def test_a_latency_change_is_written_in_a_unit_that_shows_it(
    this: float, before: float, shown: str
) -> None:
    assert delta(this, before, "seconds") == shown


def test_per_event_shares_count_final_events_only() -> None:
    at = datetime(2025, 3, 1, tzinfo=UTC)
    points = [
        RatePoint(at, "sent", 50),
        RatePoint(at, "delivered", 6),
        RatePoint(at, "error", 1),
        RatePoint(at, "expired", 1),
        RatePoint(at, "read", 9),
    ]

    line = per_event_shares(points)

    assert "delivered 75.0%, error 12.5%, expired 12.5% of 8 final events" in line
    assert "no final event" in per_event_shares([RatePoint(at, "sent", 3)])
