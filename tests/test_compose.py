"""compose.yaml is code too: it must name real commands, settings and files."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from sidecar.cli import main
from sidecar.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "compose.yaml").read_text()))


def test_every_sidecar_setting_in_compose_exists(compose: dict[str, Any]) -> None:
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    for name, service in compose["services"].items():
        for variable in service.get("environment", {}):
            if variable.startswith(ENV_PREFIX):
                assert variable in known, f"{name}: {variable} is not a setting"


def test_every_sidecar_service_runs_a_real_command(compose: dict[str, Any]) -> None:
    runner = CliRunner()
    for name, service in compose["services"].items():
        if service.get("image") != "qlara-sidecar:local":
            continue
        result = runner.invoke(main, [*service["command"], "--help"])
        assert result.exit_code == 0, f"{name}: {service['command']} -> {result.output}"


def test_dependencies_name_defined_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"


def test_only_the_tls_proxy_is_reachable_from_outside(compose: dict[str, Any]) -> None:
    published = {
        name: [str(mapping) for mapping in service["ports"]]
        for name, service in compose["services"].items()
        if service.get("ports")
    }
    assert published == {"caddy": ["80:80", "443:443"], "grafana": ["127.0.0.1:3000:3000"]}


def test_the_tls_proxy_balances_every_receiver_and_fronts_the_explorer(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    caddy = services["caddy"]
    (mount,) = [v for v in caddy["volumes"] if v.startswith("./")]
    source, target, *_ = mount.split(":")
    assert target == "/etc/caddy/Caddyfile"
    caddyfile = (ROOT / source).read_text()
    receivers = sorted(n for n, s in services.items() if s.get("command") == ["receiver"])
    assert len(receivers) == 2  # one restarts while the other takes the webhook
    for name in receivers:
        port = services[name]["environment"]["QLARA_SIDECAR_PORT"]
        assert f"{name}:{port}" in caddyfile
        assert name in caddy["depends_on"]
    assert "health_uri /readyz" in caddyfile
    assert "reverse_proxy explorer:8501" in caddyfile


def test_the_caddyfile_is_valid() -> None:
    import subprocess

    from tests.conftest import on_path

    caddy = on_path("caddy", package="caddy")
    result = subprocess.run(
        [caddy, "validate", "--adapter", "caddyfile", "--config", str(ROOT / "receiver/Caddyfile")],
        env={
            "QLARA_PUBLIC_HOST": "hooks.example.com",
            "ACME_EMAIL": "ops@example.com",
            "HOME": "/tmp",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_queue_keeps_what_it_acknowledged(compose: dict[str, Any]) -> None:
    command = compose["services"]["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--appendfsync") + 1] == "always"


def test_the_image_copies_every_package_the_project_installs() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    # Every top-level package a pattern matches ("qlara*" is qlara and qlara_api)
    packages = sorted(
        path.parent.name
        for path in ROOT.glob("*/__init__.py")
        if any(fnmatch.fnmatch(path.parent.name, pattern) for pattern in patterns)
    )
    assert "metrics" in packages
    assert "qlara_api" in packages
    # and a new top-level package is installed, not left out of the wheel (the tests alone
    # are not shipped)
    every = {path.parent.name for path in ROOT.glob("*/__init__.py")}
    assert every - set(packages) == {"tests"}
    for package in packages:
        assert f"COPY {package} ./{package}" in dockerfile


def _pins(lock: str) -> dict[str, str]:
    """``name -> version==... ; markers`` of a lock file's requirement lines."""
    pins = {}
    for line in (ROOT / lock).read_text().splitlines():
        if "==" in line and not line.startswith((" ", "#")):
            name, _, rest = line.partition("==")
            pins[f"{name.strip().lower()} {rest.partition(';')[2].strip()}"] = rest.strip()
    return pins


def test_the_image_installs_the_runtime_dependencies_alone_at_the_tested_versions() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "-r requirements-runtime.lock" in dockerfile
    assert "requirements.lock" not in dockerfile.replace("requirements-runtime.lock", "")
    runtime, everything = _pins("requirements-runtime.lock"), _pins("requirements.lock")
    names = {key.split()[0] for key in runtime}
    # no test, lint or build tool
    assert not names & {"pytest", "mypy", "hypothesis", "ruff", "schemathesis", "trustme"}
    assert not names & {"import-linter", "grafana-foundation-sdk", "oidc-provider-mock"}
    # what runs is what the tests ran: the same version of each
    assert {"litestar", "dramatiq", "sqlalchemy", "streamlit", "phonenumbers"} <= names
    for key, pin in runtime.items():
        assert everything.get(key) == pin, key


def test_no_two_containers_count_into_one_directory(compose: dict[str, Any]) -> None:
    # A metrics file is named by PID, and containers reuse PIDs: a directory written by two
    # containers mixes their counts. Each sidecar service counts into a tmpfs of its own.
    data_dir = "/var/lib/qlara"
    shared: dict[str, list[str]] = {}
    for name, service in compose["services"].items():
        if service.get("image") != "qlara-sidecar:local":
            continue
        tmpfs = [mount.split(":")[0] for mount in service.get("tmpfs", [])]
        assert data_dir in tmpfs or f"{data_dir}/metrics" in tmpfs, name
        for volume in service.get("volumes", []):
            source, target, *_ = volume.split(":")
            shared.setdefault(source, []).append(name)
            assert not target.startswith(f"{data_dir}/metrics"), name
    assert {source: names for source, names in shared.items() if len(names) > 1} == {}
    # owned by the image's user, whom nobody else may read
    dockerfile = (ROOT / "Dockerfile").read_text()
    uid = dockerfile.split("--uid ")[1].split()[0]
    for name, service in compose["services"].items():
        for mount in service.get("tmpfs", []):
            assert f"uid={uid}" in mount, name
            assert "mode=0700" in mount, name
    # and a worker replica serves what it counts itself
    worker = compose["services"]["worker"]["environment"]
    assert worker["QLARA_SIDECAR_METRICS_PORT"] != "0"


def test_every_secret_comes_from_the_environment_and_redis_asks_for_one(
    compose: dict[str, Any],
) -> None:
    import re

    secretive = re.compile(r"TOKEN|PASSWORD|SECRET|AUTH", re.IGNORECASE)
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if secretive.search(key):
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", str(value)), f"{name}: {key}"
        for key, value in (service.get("environment") or {}).items():
            # a password inside a URL is interpolated too
            if "://" in str(value) and "@" in str(value):
                assert re.search(r":\$\{[A-Z_]+:\?[^}]+\}@", str(value)), f"{name}: {key}"
    command = compose["services"]["redis"]["command"]
    assert command[command.index("--requirepass") + 1].startswith("${REDIS_PASSWORD:?")
    # and nothing secret is baked into the image
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert not secretive.search(dockerfile.replace("PIP_DISABLE", ""))


def test_every_sidecar_service_has_a_memory_limit(compose: dict[str, Any]) -> None:
    limits = {
        name: service.get("mem_limit")
        for name, service in compose["services"].items()
        if service.get("image") == "qlara-sidecar:local"
    }
    assert all(limits.values()), limits

    def mib(text: str) -> int:
        return int(text.rstrip("m"))

    # the ones bench/footprint.py measures, above what they held loaded (RESULTS.md)
    assert mib(limits["receiver-a"]) >= 1.5 * 279
    assert mib(limits["worker"]) >= 1.4 * 354
    assert mib(limits["explorer"]) >= 1.5 * 228
