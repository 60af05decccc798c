"""The explorer role: its settings, its Streamlit options, the configuration it hands over."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from alerts import Thresholds, load_thresholds, write
from dashboard import format_duration
from sidecar.dashboard_role import dashboard_config, dashboard_spec, streamlit_options
from sidecar.settings import SettingsError, load_settings


def test_the_explorer_is_private_by_default() -> None:
    options = streamlit_options(load_settings())

    assert options["server.address"] == "127.0.0.1"
    assert options["server.port"] == 8501
    assert options["browser.gatherUsageStats"] is False
    assert options["client.showErrorDetails"] == "none"


def test_the_explorer_lists_as_stuck_what_the_alert_fires_on(tmp_path: Path) -> None:
    # By default, both read the alert thresholds' defaults
    config = dashboard_config(load_settings({"data_dir": tmp_path}))
    rendered = {c: d for c, d in Thresholds().stuck.after.items()}
    assert {c: format_duration(d) for c, d in config.stuck_after.items()} == rendered

    # And a thresholds file changes both: the rules `alerts render` writes and the explorer
    thresholds = tmp_path / "thresholds.yaml"
    thresholds.write_text("stuck:\n  after:\n    sms: 20m\n    other: 2h\n")
    settings = load_settings({"data_dir": tmp_path, "alert_thresholds": str(thresholds)})
    assert dashboard_config(settings).stuck_after == {
        "sms": timedelta(minutes=20),
        "rcs": timedelta(hours=6),
        "whatsapp": timedelta(hours=6),
        "other": timedelta(hours=2),
    }
    rules = write(load_thresholds(thresholds), tmp_path / "rules")
    delivery = next(p for p in rules if p.name == "delivery.yml").read_text()
    assert 'qlara_messages_pending_oldest_age_seconds{channel="sms"}) > 1200' in delivery
    assert 'qlara_messages_pending_oldest_age_seconds{channel="other"}) > 7200' in delivery


def test_the_explorer_override_applies_to_the_explorer_alone(tmp_path: Path) -> None:
    settings = load_settings({"data_dir": tmp_path, "dashboard_stuck_after": "sms=30m"})

    assert dashboard_config(settings).stuck_after["sms"] == timedelta(minutes=30)
    assert dashboard_config(settings).stuck_after["other"] == timedelta(hours=6)
    assert settings.dashboard_stuck_after == "sms=30m"


def test_the_explorer_override_keeps_the_thresholds_files_other_channels(tmp_path: Path) -> None:
    thresholds = tmp_path / "thresholds.yaml"
    thresholds.write_text("stuck:\n  after:\n    other: 2h\n")
    settings = load_settings(
        {
            "data_dir": tmp_path,
            "alert_thresholds": str(thresholds),
            "dashboard_stuck_after": "sms=30m",
        }
    )

    stuck = dashboard_config(settings).stuck_after

    assert (stuck["sms"], stuck["other"]) == (timedelta(minutes=30), timedelta(hours=2))


def test_an_unreadable_thresholds_file_names_the_variable_and_the_key(tmp_path: Path) -> None:
    thresholds = tmp_path / "thresholds.yaml"
    thresholds.write_text("stuck:\n  after:\n    sms: soon\n")

    with pytest.raises(SettingsError, match=r"QLARA_SIDECAR_ALERT_THRESHOLDS: .*stuck\.after\.sms"):
        load_settings({"alert_thresholds": str(thresholds)})


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


def test_single_sign_on_is_written_as_streamlit_s_auth_section_only_when_set(
    tmp_path: Path,
) -> None:
    import stat
    import tomllib

    from sidecar.dashboard_role import SECRETS_FILE, write_sso_secrets
    from sidecar.settings import Settings

    secret = 'se"cret\\0123456789'
    settings = Settings(
        data_dir=tmp_path,
        dashboard_port=8600,
        dashboard_oidc_metadata_url="https://login.example.com/.well-known/openid-configuration",
        dashboard_oidc_client_id="explorer",
        dashboard_oidc_client_secret=secret,
    )
    path = write_sso_secrets(settings)

    assert path == tmp_path / SECRETS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    auth = tomllib.loads(path.read_text())["auth"]
    assert auth["client_secret"] == secret  # quoted as TOML wants
    assert auth["redirect_uri"] == "http://127.0.0.1:8600/oauth2callback"
    assert auth["server_metadata_url"].startswith("https://login.example.com/")
    assert len(auth["cookie_secret"]) == 64
    assert secret not in auth["cookie_secret"]
    assert dashboard_config(settings).sso

    # Turned off, the file goes
    off = Settings(data_dir=tmp_path, dashboard_port=8600)
    assert write_sso_secrets(off) is None
    assert not path.exists()
    assert not dashboard_config(off).sso
