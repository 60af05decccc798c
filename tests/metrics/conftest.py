"""Metrics under test: a private registry holding every metric object, read as deltas, and
promtool when the machine has it."""

from __future__ import annotations

import subprocess

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.registry import Collector

from metrics.definitions import ALL
from tests.conftest import on_path


class Samples:
    """Reads sample values from a private registry (every metric object, and ``extra``
    collectors); :meth:`delta` is the change since the fixture was made (the metric objects
    are process-wide, so other tests move them too)."""

    def __init__(self, *extra: Collector) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        for metric in (*ALL, *extra):
            self.registry.register(metric)
        self._before = self._all()

    def _all(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in self.registry.collect()
            for sample in family.samples
        }

    def value(self, name: str, **labels: str) -> float | None:
        """The current value of one sample, ``None`` when it does not exist."""
        return self.registry.get_sample_value(name, labels)

    def delta(self, name: str, **labels: str) -> float:
        """How much one sample moved since the fixture was made."""
        key = (name, tuple(sorted(labels.items())))
        return (self._all().get(key) or 0.0) - (self._before.get(key) or 0.0)

    def moved_label_values(self, name: str, label: str) -> set[str]:
        """The values of ``label`` among the samples of ``name`` that moved."""
        now = self._all()
        return {
            dict(key[1])[label]
            for key, value in now.items()
            if key[0] == name and value != self._before.get(key, 0.0)
        }

    def total_delta(self, name: str) -> float:
        """How much every sample of ``name`` moved since the fixture was made, summed."""
        now = self._all()
        return sum(
            value - self._before.get(key, 0.0) for key, value in now.items() if key[0] == name
        )


@pytest.fixture
def samples() -> Samples:
    return Samples()


@pytest.fixture(scope="session")
def promtool() -> str:
    """The path of promtool (Debian's ``prometheus`` package)."""
    return on_path("promtool", package="prometheus")


def promtool_check(promtool: str, exposition: bytes) -> str:
    """What ``promtool check metrics`` says about ``exposition`` (empty when it is clean)."""
    done = subprocess.run(
        [promtool, "check", "metrics"], input=exposition, capture_output=True, check=False
    )
    return (done.stdout + done.stderr).decode()
