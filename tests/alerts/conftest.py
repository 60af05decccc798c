"""Alert tests need Debian's Prometheus tools: promtool and prometheus (package
``prometheus``), amtool and the Alertmanager (package ``prometheus-alertmanager``, whose
binary is ``prometheus-alertmanager``; upstream's is ``alertmanager``). A missing one skips
the test, and fails it in CI."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.alerts.pipeline import Pager, Service, Simulators
from tests.conftest import on_path


@pytest.fixture(scope="session")
def promtool() -> str:
    return on_path("promtool", package="prometheus")


@pytest.fixture(scope="session")
def prometheus_binary() -> str:
    return on_path("prometheus", package="prometheus")


@pytest.fixture(scope="session")
def amtool() -> str:
    return on_path("amtool", package="prometheus-alertmanager")


@pytest.fixture(scope="session")
def alertmanager_binary() -> str:
    return on_path("prometheus-alertmanager", "alertmanager", package="prometheus-alertmanager")


@pytest.fixture
def pager() -> Iterator[Pager]:
    """A webhook receiver on loopback keeping every notification posted to it."""
    yield from Pager().serve()


@pytest.fixture
def simulators() -> Iterator[list[Simulators]]:
    """Where a test keeps its :class:`Simulators`; every process they started is stopped
    after it."""
    made: list[Simulators] = []
    yield made
    for simulator in made:
        simulator.stop_all()


@pytest.fixture
def services() -> Iterator[list[Service]]:
    """Where a test keeps the services it starts; each is stopped after it, last first."""
    started: list[Service] = []
    yield started
    for service in reversed(started):
        service.stop()
