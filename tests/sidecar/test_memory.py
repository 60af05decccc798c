"""Receiver and worker processes cap glibc's malloc arenas, unless the operator chose."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize(("operator_value", "expected"), [(None, "True"), ("4", "False")])
def test_malloc_arenas_are_capped_unless_the_operator_chose(
    operator_value: str | None, expected: str
) -> None:
    # In a fresh interpreter: mallopt must come before any thread allocates.
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    if operator_value is not None:
        env["MALLOC_ARENA_MAX"] = operator_value
    out = subprocess.run(
        [sys.executable, "-c", "from sidecar.memory import limit_malloc_arenas as f; print(f())"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.strip() == expected
