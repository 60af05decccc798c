"""The dashboard's queries run on the alert tests' pipeline: Debian's promtool and
Prometheus, the simulator, and the fixtures that stop them (missing binaries skip the
tests, and fail them in CI)."""

from tests.alerts.conftest import prometheus_binary, promtool, services, simulators

__all__ = ["prometheus_binary", "promtool", "services", "simulators"]
