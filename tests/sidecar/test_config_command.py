"""`qlara-sidecar config`: every setting, its variable, default and value, secrets masked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sidecar.settings import Settings, env_name


def run_config(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith("QLARA_SIDECAR_")}
    return subprocess.run(
        [sys.executable, "-m", "sidecar", "config", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_config_prints_every_setting_with_its_current_value(tmp_path: Path) -> None:
    # Given a port from the environment and a webhook token
    env = {
        "QLARA_SIDECAR_DATA_DIR": str(tmp_path),
        "QLARA_SIDECAR_PORT": "9123",
        "QLARA_SIDECAR_WEBHOOK_TOKEN": "never-print-this-webhook-token",
        "QLARA_SIDECAR_DATABASE_URL": "postgresql+psycopg://qlara:hunter2hunter2@db/qlara",
    }

    # When the effective configuration is printed
    out = run_config(env=env).stdout

    # Then every setting is there, with its value, and no secret is
    for name in Settings.model_fields:
        assert env_name(name) in out, f"{env_name(name)} missing"
    assert "QLARA_SIDECAR_PORT = 9123   (env)" in out
    assert "QLARA_SIDECAR_WORKERS = unset   (default)" in out
    assert "never-print-this-webhook-token" not in out
    assert "hunter2hunter2" not in out
    assert "QLARA_SIDECAR_WEBHOOK_TOKEN = ********" in out


def test_config_shows_flag_values_over_the_environment(tmp_path: Path) -> None:
    env = {"QLARA_SIDECAR_PORT": "9123", "QLARA_SIDECAR_DATA_DIR": str(tmp_path)}

    out = run_config("--port", "9200", env=env).stdout

    assert "QLARA_SIDECAR_PORT = 9200   (flag)" in out


def test_the_markdown_reference_has_one_row_per_setting(tmp_path: Path) -> None:
    out = run_config("--markdown", env={"QLARA_SIDECAR_DATA_DIR": str(tmp_path)}).stdout

    rows = [line for line in out.splitlines() if line.startswith("| `QLARA_SIDECAR_")]
    assert len(rows) == len(Settings.model_fields)
    assert "| `QLARA_SIDECAR_PORT` | `--port` | `8000` | TCP port the receiver listens on. |" in (
        out
    )


def test_a_password_given_as_a_url_parameter_is_masked_too(tmp_path: Path) -> None:
    env = {
        "QLARA_SIDECAR_DATA_DIR": str(tmp_path),
        "QLARA_SIDECAR_DATABASE_URL": "postgresql://qlara@db/qlara?sslmode=require&password=pg-s3cret",
        "QLARA_SIDECAR_REDIS_URL": "redis://cache:6379/0?PASSWORD=redis-s3cret",
    }

    out = run_config(env=env).stdout

    assert "pg-s3cret" not in out
    assert "redis-s3cret" not in out
    assert "postgresql://qlara@db/qlara?sslmode=require&password=***" in out
