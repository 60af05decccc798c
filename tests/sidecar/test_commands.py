"""The smaller commands: migrate, redrive, and the roles' required settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from sidecar.receiver_role import warn_if_open
from sidecar.settings import load_settings
from tests.sidecar.support import environment_without_settings


def run(*args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sidecar", *args],
        env=environment_without_settings(**settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_migrate_creates_the_default_sqlite_ledger_under_the_data_dir(tmp_path: Path) -> None:
    result = run("migrate", data_dir=str(tmp_path))

    assert result.returncode == 0, result.stderr
    assert "is up to date" in result.stdout
    assert (tmp_path / "ledger.sqlite3").exists()


@pytest.mark.parametrize("command", ["receiver", "worker"])
def test_a_role_without_redis_exits_2_naming_the_variable(tmp_path: Path, command: str) -> None:
    result = run(command, data_dir=str(tmp_path))

    assert result.returncode == 2
    assert result.stderr.strip() == (
        "qlara-sidecar: error: QLARA_SIDECAR_REDIS_URL: must be set for this command"
    )


def test_the_receiver_also_needs_a_database_url(tmp_path: Path) -> None:
    result = run("receiver", data_dir=str(tmp_path), redis_url="redis://127.0.0.1:6379/0")

    assert result.returncode == 2
    assert "QLARA_SIDECAR_DATABASE_URL: must be set" in result.stderr


@pytest.mark.redis
def test_redrive_with_no_dead_letters_reports_zero(
    tmp_path: Path, redis_url: str, namespace: str
) -> None:
    migrated = run("migrate", data_dir=str(tmp_path))
    assert migrated.returncode == 0, migrated.stderr

    result = run("redrive", data_dir=str(tmp_path), redis_url=redis_url, namespace=namespace)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["redriven: 0", "remaining: 0"]


def test_redrive_without_redis_and_without_a_running_up_names_the_variable(
    tmp_path: Path,
) -> None:
    result = run("redrive", data_dir=str(tmp_path))

    assert result.returncode == 2
    assert "QLARA_SIDECAR_REDIS_URL: must be set" in result.stderr


def test_no_auth_mode_is_announced_with_a_warning() -> None:
    structlog.reset_defaults()
    settings = load_settings({"allow_no_auth": True})

    with capture_logs() as logs:
        warn_if_open(settings)

    assert [entry["log_level"] for entry in logs] == ["warning"]
    assert "ALLOW_NO_AUTH" in str(logs[0]["event"])


def test_metrics_without_a_metrics_port_exits_2_naming_the_variable(tmp_path: Path) -> None:
    result = run("metrics", data_dir=str(tmp_path))

    assert result.returncode == 2
    assert result.stderr.strip() == (
        "qlara-sidecar: error: QLARA_SIDECAR_METRICS_PORT: must be set (1-65535) for this "
        "command, e.g. --metrics-port 9100"
    )


def test_the_metrics_listener_names_the_variable_prometheus_client_reads() -> None:
    # sidecar.metrics_role spells it out: importing `metrics` there would be too early.
    from metrics import MULTIPROC_ENV
    from sidecar.metrics_role import MULTIPROC_ENV as LISTENER_ENV

    assert LISTENER_ENV == MULTIPROC_ENV


def test_the_metrics_listener_serves_the_worker_roles_directory_and_never_empties_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from metrics import MULTIPROC_ENV
    from sidecar.metrics_role import served_dir

    settings = load_settings({"data_dir": tmp_path / "data"})
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    default = (tmp_path / "data" / "metrics" / "worker").resolve()
    default.mkdir(parents=True)
    (default / "counter_7.db").write_bytes(b"a worker's values")

    assert served_dir(settings) == default
    assert (default / "counter_7.db").exists()

    given = tmp_path / "shared"
    monkeypatch.setenv(MULTIPROC_ENV, str(given))
    assert served_dir(settings) == given
    assert given.is_dir()
    # Taken out of the environment: this process must not count into it
    assert MULTIPROC_ENV not in os.environ


def test_dev_py_runs_any_qlara_sidecar_command(tmp_path: Path) -> None:
    # The checkout's set-up is current (the suite runs from it), so this only dispatches.
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, str(root / "dev.py"), "config", "--data-dir", str(tmp_path)],
        env=environment_without_settings(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert f"QLARA_SIDECAR_DATA_DIR = {tmp_path}   (flag)" in result.stdout


def test_a_commands_help_shows_the_settings_it_reads_and_still_takes_the_others(
    tmp_path: Path,
) -> None:
    simulate = run("simulate", "--help").stdout
    worker = run("worker", "--help").stdout
    dashboard = run("dashboard", "--help").stdout

    assert "--rate" in simulate
    assert "--port" in simulate
    assert "--worker-threads" not in simulate
    assert "--dashboard-users" not in simulate
    assert "qlara-sidecar config` lists them all" in " ".join(simulate.split())
    assert "--worker-threads" in worker
    assert "--max-body-bytes" not in worker
    assert "--dashboard-users NAME,..." in dashboard
    # a flag hidden from a command's help is still accepted by it
    migrated = run("migrate", "--workers", "2", "--data-dir", str(tmp_path))
    assert migrated.returncode == 0, migrated.stderr
