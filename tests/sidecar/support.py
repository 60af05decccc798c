"""Helpers shared by the sidecar tests: waiting on a condition, a clean environment."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")


def wait_until(condition: Callable[[], T], what: str, timeout: float = 30.0) -> T:
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` at the deadline.

    Exceptions count as "not yet" until the deadline, then the last one is reported.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            result = condition()
        except Exception as exc:
            last = exc
        else:
            if result:
                return result
            last = result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what} (last: {last!r})")
        time.sleep(0.05)


def environment_without_settings(**settings: str) -> dict[str, str]:
    """This process's environment minus every QLARA_SIDECAR_* variable, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("QLARA_SIDECAR_")}
    env.update({f"QLARA_SIDECAR_{name.upper()}": value for name, value in settings.items()})
    return env
