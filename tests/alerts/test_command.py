"""`qlara-sidecar alerts render` and `qlara-sidecar alerts thresholds`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from alerts import Thresholds, render, thresholds_from
from tests.sidecar.support import environment_without_settings

RULES_DIR = Path(__file__).resolve().parents[2] / "alerts" / "rules"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sidecar", "alerts", *args],
        env=environment_without_settings(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_render_writes_the_rule_files_a_thresholds_file_makes(tmp_path: Path) -> None:
    # Given a thresholds file changing one window
    thresholds = tmp_path / "thresholds.yaml"
    thresholds.write_text("silence:\n  window: 20m\n")

    # When the rules are rendered from it
    result = run("render", "--thresholds", str(thresholds), "--out", str(tmp_path / "rules"))

    # Then the three files are written, with that window
    assert result.returncode == 0, result.stderr
    expected = render(thresholds_from({"silence": {"window": "20m"}}))
    assert {p.name: p.read_text() for p in (tmp_path / "rules").iterdir()} == expected
    assert "[20m])) == 0" in expected["webhook.yml"]


def test_render_check_names_the_file_that_differs_and_exits_1(tmp_path: Path) -> None:
    copy = tmp_path / "rules"
    shutil.copytree(RULES_DIR, copy)
    current = run("render", "--check", "--out", str(copy))
    assert current.returncode == 0
    assert current.stdout.strip() == f"the rule files in {copy} are up to date (3 files)"

    (copy / "delivery.yml").write_text((copy / "delivery.yml").read_text().replace("0.9", "0.8"))
    result = run("render", "--check", "--out", str(copy))

    assert result.returncode == 1
    assert result.stderr.strip() == f"{copy / 'delivery.yml'} differs from the rendering"
    assert (copy / "delivery.yml").read_text() != render(Thresholds())["delivery.yml"]


def test_a_bad_thresholds_file_exits_2_naming_the_key(tmp_path: Path) -> None:
    thresholds = tmp_path / "thresholds.yaml"
    thresholds.write_text("near_total:\n  ratio: 1.5\n")

    result = run("render", "--thresholds", str(thresholds), "--out", str(tmp_path / "rules"))

    assert result.returncode == 2
    assert result.stderr.startswith(
        f"qlara-sidecar: error: {thresholds}: near_total.ratio: Input should be less than"
    )
    assert not (tmp_path / "rules").exists()


def test_thresholds_prints_a_file_that_render_reads_back(tmp_path: Path) -> None:
    result = run("thresholds")

    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout)["near_total"]["ratio"] == 0.9
    printed = tmp_path / "thresholds.yaml"
    printed.write_text(result.stdout)
    assert (
        run("render", "--check", "--thresholds", str(printed), "--out", str(RULES_DIR)).returncode
        == 0
    )
