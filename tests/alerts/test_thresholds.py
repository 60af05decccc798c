"""The thresholds: one typed object, defaults as the issue sets them, overridable key by key."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts import Thresholds, ThresholdsError, load_thresholds, thresholds_from, thresholds_yaml
from alerts.rules import ratio_windows
from alerts.thresholds import PerChannel
from metrics.definitions import CHANNELS
from qlara.durations import format_prometheus as format_duration
from qlara.durations import prometheus_seconds as seconds


def test_the_failure_shares_are_recorded_over_the_windows_the_alerts_read() -> None:
    assert ratio_windows(Thresholds()) == ["5m", "30m", "1h", "2h", "6h", "1d", "3d"]


def test_the_defaults_are_the_documented_ones() -> None:
    t = Thresholds()
    assert t.slo == 0.95
    assert t.error_budget == 0.05
    assert t.silence.window == "15m"
    assert dict(t.stuck.after.items()) == {
        "sms": "1h",
        "rcs": "6h",
        "whatsapp": "6h",
        "other": "6h",
    }
    assert (t.near_total.ratio, t.near_total.window, t.near_total.min_outcomes) == (0.9, "5m", 20)
    assert t.webhook_delay.above == "5m"
    assert t.rejecting.ratio == 0.05
    assert t.ack.above == "1s"
    assert t.explorer_url == "http://127.0.0.1:8501"


def test_a_per_channel_threshold_exists_for_every_channel_label_value() -> None:
    assert tuple(PerChannel.model_fields) == CHANNELS


def test_a_thresholds_file_changes_only_the_keys_it_names(tmp_path: Path) -> None:
    # Given a file that changes one nested key and one top-level key
    path = tmp_path / "thresholds.yaml"
    path.write_text("slo: 0.99\nstuck:\n  after:\n    sms: 30m\nnear_total:\n  for: 0s\n")

    # When it is loaded
    t = load_thresholds(path)

    # Then those keys change and their neighbours keep their defaults
    assert t.slo == 0.99
    assert t.error_budget == 0.01
    assert t.stuck.after.sms == "30m"
    assert t.stuck.after.rcs == "6h"
    assert t.near_total.for_ == "0s"
    assert t.near_total.ratio == 0.9
    assert t.silence == Thresholds().silence


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"silence": {"windw": "5m"}}, "thresholds: silence.windw: Extra inputs are not permitted"),
        ({"silence": {"window": "5 minutes"}}, "thresholds: silence.window: '5 minutes' is not"),
        ({"near_total": {"window": "0s"}}, "thresholds: near_total.window: '0s' must be longer"),
        ({"slo": 1.5}, "thresholds: slo: Input should be less than 1"),
        ({"explorer_url": "localhost:8501"}, "thresholds: explorer_url: String should match"),
        ({"stuck": {"after": {"fax": "1h"}}}, "thresholds: stuck.after.fax: Extra inputs"),
        ({"backlog": {"max_age": "5m"}}, "thresholds: backlog: max_age (5m) must be longer"),
        (
            {"budget_burn": {"fast": [{"long": "5m", "short": "1h", "burn_rate": 14.4}]}},
            "thresholds: budget_burn.fast.0: long (5m) must be longer than short (1h)",
        ),
    ],
)
def test_an_invalid_threshold_is_refused_naming_its_key(
    given: dict[str, object], message: str
) -> None:
    with pytest.raises(ThresholdsError) as raised:
        thresholds_from(given)

    assert str(raised.value).startswith(message)


def test_a_file_that_is_not_a_mapping_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "thresholds.yaml"
    path.write_text("- 1\n- 2\n")

    with pytest.raises(ThresholdsError, match=r"thresholds\.yaml: must be a mapping"):
        load_thresholds(path)


def test_the_printed_thresholds_read_back_as_the_same_thresholds(tmp_path: Path) -> None:
    changed = thresholds_from({"slo": 0.98, "backlog": {"max_age": "45m"}})
    path = tmp_path / "thresholds.yaml"
    path.write_text(thresholds_yaml(changed))

    assert load_thresholds(path) == changed


@pytest.mark.parametrize(
    ("text", "total"),
    [("1m30s", 90), ("15m", 900), ("1h30m", 5400), ("3d", 259200), ("1w", 604800), ("0s", 0)],
)
def test_durations_are_read_and_written_the_way_prometheus_writes_them(
    text: str, total: float
) -> None:
    assert seconds(text) == total
    assert format_duration(total) == text


def test_a_duration_may_be_written_in_a_smaller_unit() -> None:
    assert seconds("90s") == seconds("1m30s") == 90


@pytest.mark.parametrize("text", ["", "15", "m", "1.5h", "15 m", "1m1h"])
def test_a_duration_prometheus_would_not_read_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a Prometheus duration"):
        seconds(text)
