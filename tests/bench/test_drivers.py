"""The bench drivers as a reader first meets them: run from the repository's venv."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.mark.parametrize(
    ("driver", "env"),
    [
        ("pipeline.py", {"N": "100"}),
        ("receiver.py", {"TARGETS": "ours_everysec flask_rq"}),
    ],
)
def test_a_missing_peers_directory_is_one_line_that_says_how_to_set_it(
    tmp_path: Path, driver: str, env: dict[str, str]
) -> None:
    missing = tmp_path / "no-peers"
    result = subprocess.run(
        [sys.executable, str(BENCH / driver)],
        env={"PATH": "/usr/bin:/bin", "PEERS_DIR": str(missing), "OUT": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert str(missing) in result.stderr
    assert "PEERS_DIR" in result.stderr
    assert "Traceback" not in result.stderr
