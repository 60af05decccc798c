"""End-to-end fixtures: a real `qlara-sidecar up` per test, on free ports, in a tmp dir."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.sidecar_process import Sidecar, free_port, sidecar_env

pytestmark = pytest.mark.e2e


@pytest.fixture
def make_sidecar(tmp_path: Path) -> Iterator[Callable[..., Sidecar]]:
    """Build (not start) sidecars; every one started is stopped after the test."""
    made: list[Sidecar] = []

    def make(**settings: str) -> Sidecar:
        data_dir = tmp_path / f"data{len(made)}"
        port = free_port()
        sidecar = Sidecar(
            data_dir=data_dir,
            env=sidecar_env(data_dir, port, **settings),
            port=port,
            log_path=tmp_path / f"sidecar{len(made)}.log",
        )
        made.append(sidecar)
        return sidecar

    yield make
    for sidecar in made:
        if sidecar.process is not None:
            try:
                sidecar.stop()
            except Exception as exc:
                print(f"stopping {sidecar.port} failed: {exc}")
