"""promtool on the shipped rules: they load, and their unit tests (alerts/tests/) pass and
cover every alert both ways."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.alerts.test_rules import SEVERITIES

ALERTS_DIR = Path(__file__).resolve().parents[2] / "alerts"
RULE_FILES = sorted((ALERTS_DIR / "rules").glob("*.yml"))
UNIT_TESTS = sorted((ALERTS_DIR / "tests").glob("*_test.yml"))


def promtool_run(promtool: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *map(str, args)], capture_output=True, text=True, timeout=240, check=False
    )


def test_promtool_checks_every_rule_file_without_a_complaint(promtool: str) -> None:
    done = promtool_run(promtool, "check", "rules", *RULE_FILES)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "FAILED" not in done.stdout + done.stderr
    assert done.stdout.count("SUCCESS") == len(RULE_FILES)


def test_the_promtool_unit_tests_of_the_rules_pass(promtool: str) -> None:
    done = promtool_run(promtool, "test", "rules", *UNIT_TESTS)

    assert done.returncode == 0, done.stdout + done.stderr


def _cases() -> list[dict[str, Any]]:
    return [
        case
        for path in UNIT_TESTS
        for group in yaml.safe_load(path.read_text())["tests"]
        for case in group.get("alert_rule_test", [])
    ]


def test_every_alert_has_a_unit_test_where_it_fires_and_one_where_it_must_not() -> None:
    firing = {case["alertname"] for case in _cases() if case["exp_alerts"]}
    quiet = {case["alertname"] for case in _cases() if not case["exp_alerts"]}

    assert firing == set(SEVERITIES)
    # Watchdog is always firing: it has no quiet case by design.
    assert quiet == set(SEVERITIES) - {"Watchdog"}


def test_every_critical_alerts_unit_test_states_its_detection_time() -> None:
    # A test group (the text from one "- name:" to the next) that expects a critical alert
    # to fire says, in a comment, how long after the fault it fires.
    text = "\n".join(path.read_text() for path in UNIT_TESTS)
    groups = re.split(r"\n  - name: ", text)
    for name, severity in SEVERITIES.items():
        if severity != "critical":
            continue
        stating = [
            group
            for group in groups
            if f"alertname: {name}\n        exp_alerts:\n          - exp_labels" in group
            and "# Detection time:" in group
        ]
        assert stating, f"no unit test of {name} states its detection time"
