"""compose.yaml runs the dashboard: Grafana gets the provisioning files and the dashboard
folder where they say, its datasource is compose's Prometheus, and that Prometheus scrapes
compose's sidecar services and loads alerts/rules/ (whose recorded series the dashboard
reads)."""

from __future__ import annotations

import subprocess
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from metrics.grafana import DASHBOARD_FILE

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "metrics" / "grafana"
PROMETHEUS_CONFIG = ROOT / "metrics" / "prometheus" / "prometheus.yml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "compose.yaml").read_text())["services"])


def mounts(service: dict[str, Any]) -> dict[Path, PurePosixPath]:
    """The service's bind mounts of repository paths: repository path -> container path."""
    found = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith("./"):
            found[(ROOT / source).resolve()] = PurePosixPath(target)
    return found


def test_grafana_gets_the_provisioning_files_and_the_dashboard_folder(
    compose: dict[str, Any],
) -> None:
    grafana = mounts(compose["grafana"])
    assert grafana[GRAFANA / "provisioning"] == PurePosixPath("/etc/grafana/provisioning")
    dashboards = grafana[DASHBOARD_FILE.parent]

    provider_file = GRAFANA / "provisioning" / "dashboards" / "qlara-sidecar.yml"
    (provider,) = yaml.safe_load(provider_file.read_text())["providers"]
    assert provider["type"] == "file"
    assert PurePosixPath(provider["options"]["path"]) == dashboards
    home = compose["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert PurePosixPath(home) == dashboards / DASHBOARD_FILE.name


def test_grafanas_datasource_is_composes_prometheus(compose: dict[str, Any]) -> None:
    datasources_file = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
    (datasource,) = yaml.safe_load(datasources_file.read_text())["datasources"]
    assert datasource["type"] == "prometheus"
    assert datasource["isDefault"] is True
    assert datasource["url"] == "http://prometheus:9090"
    assert "prometheus" in compose
    assert "prometheus" in compose["grafana"]["depends_on"]


def test_composes_prometheus_scrapes_the_sidecar_and_loads_the_alert_rules(
    compose: dict[str, Any],
) -> None:
    prometheus = mounts(compose["prometheus"])
    config_path = prometheus[PROMETHEUS_CONFIG]
    assert f"--config.file={config_path}" in compose["prometheus"]["command"]
    rules_dir = prometheus[ROOT / "alerts" / "rules"]

    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    assert config["rule_files"] == [str(rules_dir / "*.yml")]
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "qlara-sidecar"  # the alerts' `job` threshold
    (static,) = job["static_configs"]
    receivers = sorted(n for n, s in compose.items() if s.get("command") == ["receiver"])
    ports = {compose[r]["environment"]["QLARA_SIDECAR_PORT"] for r in receivers}
    # every receiver on its own, so that none is missed in the sums
    assert len(receivers) == 2
    assert static["targets"] == [f"{r}:{p}" for r in receivers for p in ports]
    # and every replica of the worker service, each serving its own processes' counts
    worker = compose["worker"]["environment"]
    (dns,) = job["dns_sd_configs"]
    assert dns == {
        "names": ["worker"],
        "type": "A",
        "port": int(worker["QLARA_SIDECAR_METRICS_PORT"]),
    }
    # Reachable from Prometheus's container, not on its own loopback only
    assert worker["QLARA_SIDECAR_METRICS_HOST"] != "127.0.0.1"


def test_composes_prometheus_sends_its_alerts_to_composes_alertmanager(
    compose: dict[str, Any],
) -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    (alertmanagers,) = config["alerting"]["alertmanagers"]
    (static,) = alertmanagers["static_configs"]
    host, _, port = static["targets"][0].partition(":")
    alertmanager = compose[host]
    assert alertmanager["image"].startswith("prom/alertmanager:")
    assert port == "9093"  # Alertmanager's own
    # with the example configuration the alerts' tests check
    config_file = mounts(alertmanager)[ROOT / "alerts" / "alertmanager" / "alertmanager.yml"]
    assert f"--config.file={config_file}" in alertmanager["command"]
    assert host in compose["prometheus"]["depends_on"]


def test_compose_serves_the_explorer_behind_a_password(compose: dict[str, Any]) -> None:
    explorer = compose["explorer"]
    assert explorer["command"] == ["dashboard"]
    assert explorer["environment"]["QLARA_SIDECAR_DASHBOARD_PASSWORD"].startswith(
        "${QLARA_SIDECAR_DASHBOARD_PASSWORD:?"
    )
    port = explorer["environment"]["QLARA_SIDECAR_DASHBOARD_PORT"]
    assert f":{port}/_stcore/health" in " ".join(explorer["healthcheck"]["test"])
    assert "ports" not in explorer  # reached through the TLS proxy


def test_the_prometheus_config_is_valid(promtool: str) -> None:
    result = subprocess.run(
        [promtool, "check", "config", str(PROMETHEUS_CONFIG)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
