"""The explorer role: its settings, its Streamlit options, the configuration it hands over."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from sidecar.dashboard_role import dashboard_config, dashboard_spec, streamlit_options
from sidecar.settings import SettingsError, load_settings


def test_the_explorer_is_private_by_default() -> None:
    options = streamlit_options(load_settings())

    assert options["server.address"] == "127.0.0.1"
    assert options["server.port"] == 8501
    assert options["browser.gatherUsageStats"] is False
    assert options["client.showErrorDetails"] == "none"


def test_stuck_thresholds_default_per_channel_and_may_be_overridden(tmp_path: Path) -> None:
    settings = load_settings({"data_dir": tmp_path, "dashboard_stuck_after": "sms=30m"})

    config = dashboard_config(settings)

    assert config.stuck_after == {
        "sms": timedelta(minutes=30),
        "rcs": timedelta(hours=6),
        "whatsapp": timedelta(hours=6),
        "other": timedelta(hours=1),
    }
    assert settings.dashboard_stuck_after == "sms=30m,rcs=6h,whatsapp=6h,other=1h"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("dashboard_stuck_after", "pigeon=1h"),
        ("dashboard_stuck_after", "sms=soon"),
        ("dashboard_gap_threshold", "0m"),
        ("dashboard_port", "70000"),
    ],
)
def test_an_unreadable_explorer_setting_names_its_variable(field: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"QLARA_SIDECAR_{field.upper()}"):
        load_settings({field: value})


def test_the_password_and_users_reach_the_explorer_and_no_other_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QLARA_SIDECAR_DASHBOARD_PASSWORD", "correct horse battery")
    settings = load_settings({"data_dir": tmp_path, "dashboard_users": "ana, ops"})

    config = dashboard_config(settings)

    assert config.admits("ana", "correct horse battery")
    assert not config.admits("eve", "correct horse battery")
    assert not config.admits("ana", "wrong")
    assert "QLARA_SIDECAR_DASHBOARD_PASSWORD" not in settings.to_env()
    assert "correct horse battery" in settings.secret_values()


def test_the_explorer_child_counts_into_no_metrics_directory() -> None:
    spec = dashboard_spec({"PROMETHEUS_MULTIPROC_DIR": "/tmp/m", "QLARA_SIDECAR_PORT": "1"})

    assert spec.argv[-1] == "dashboard"
    assert "PROMETHEUS_MULTIPROC_DIR" not in spec.env
    assert spec.env["QLARA_SIDECAR_PORT"] == "1"
