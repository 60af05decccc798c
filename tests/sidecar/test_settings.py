"""Settings: defaults, the environment, flags, and the one-line error for a bad value."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from sidecar import wiring
from sidecar.settings import Settings, SettingsError, load_settings

CLI = [sys.executable, "-m", "sidecar"]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No QLARA_SIDECAR_* variable of the machine leaks into a test."""
    for name in list(os.environ):
        if name.upper().startswith("QLARA_SIDECAR_"):
            monkeypatch.delenv(name)


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith("QLARA_SIDECAR_")}
    return subprocess.run(
        [*CLI, *args],
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_defaults_are_the_documented_ones() -> None:
    settings = load_settings()

    assert settings.data_dir == Path("./qlara-data")
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.webhook_token is None
    assert settings.read_token is None
    assert settings.redis_url is None
    assert settings.database_url is None
    assert (settings.workers, settings.worker_threads) == (None, 64)
    assert settings.receiver_processes is None
    assert settings.allow_no_auth is False
    assert settings.allowed_networks == ()
    assert settings.trusted_proxies == ()
    assert settings.max_body_bytes == 65536
    assert (settings.redis_timeout, settings.enqueue_deadline) == (0.25, 0.5)
    assert (settings.retention_days, settings.max_retries, settings.max_deliveries) == (90, 8, 3)
    assert settings.broker_heartbeat_timeout == 15.0
    assert settings.namespace == "qlara"
    assert settings.openapi is False
    assert (settings.log_level, settings.log_format) == ("info", "auto")
    assert (settings.redis_port, settings.redis_appendfsync) == (0, "always")
    assert (settings.metrics_host, settings.metrics_port) == ("127.0.0.1", 0)


def test_the_environment_is_parsed_into_typed_values(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given values of every kind in the environment
    monkeypatch.setenv("QLARA_SIDECAR_PORT", "9001")
    monkeypatch.setenv("QLARA_SIDECAR_ALLOW_NO_AUTH", "yes")
    monkeypatch.setenv("QLARA_SIDECAR_ALLOWED_NETWORKS", "203.0.113.0/24, 2001:db8::/32")
    monkeypatch.setenv("QLARA_SIDECAR_REDIS_TIMEOUT", "0.1")
    monkeypatch.setenv("QLARA_SIDECAR_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("QLARA_SIDECAR_WEBHOOK_TOKEN", "a-webhook-token-of-some-length")
    monkeypatch.setenv("QLARA_SIDECAR_REDIS_URL", "")

    # When the settings are read
    settings = load_settings()

    # Then each is typed, secrets are secret and an empty variable means unset
    assert settings.port == 9001
    assert settings.allow_no_auth is True
    assert settings.allowed_networks == (
        ipaddress.ip_network("203.0.113.0/24"),
        ipaddress.ip_network("2001:db8::/32"),
    )
    assert settings.redis_timeout == 0.1
    assert settings.log_level == "debug"
    assert isinstance(settings.webhook_token, SecretStr)
    assert "a-webhook-token" not in repr(settings)
    assert settings.redis_url is None


def test_a_flag_beats_the_environment_which_beats_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("QLARA_SIDECAR_PORT", "9001")
    monkeypatch.setenv("QLARA_SIDECAR_WORKERS", "5")

    settings = load_settings({"port": "9002", "workers": None})

    assert settings.port == 9002
    assert settings.workers == 5
    assert settings.worker_threads == 64


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("PORT", "eighty", "QLARA_SIDECAR_PORT: must be an integer between 1 and 65535"),
        ("PORT", "70000", "QLARA_SIDECAR_PORT: must be an integer between 1 and 65535"),
        ("LOG_FORMAT", "xml", "QLARA_SIDECAR_LOG_FORMAT: must be one of: auto, json, console"),
        ("ALLOW_NO_AUTH", "perhaps", "QLARA_SIDECAR_ALLOW_NO_AUTH: must be true or false"),
        ("ALLOWED_NETWORKS", "10.0.0.0/8,nowhere", "QLARA_SIDECAR_ALLOWED_NETWORKS: 'nowhere'"),
        ("REDIS_APPENDFSYNC", "never", "QLARA_SIDECAR_REDIS_APPENDFSYNC: must be one of"),
        ("REDIS_URL", "http://x", "QLARA_SIDECAR_REDIS_URL: must start with redis://"),
        ("REDIS_TIMEOUT", "0", "QLARA_SIDECAR_REDIS_TIMEOUT: must be a number of seconds"),
        ("METRICS_PORT", "70000", "QLARA_SIDECAR_METRICS_PORT: must be an integer between 0"),
        ("METRICS_PORT", "-1", "QLARA_SIDECAR_METRICS_PORT: must be an integer between 0"),
        ("METRICS_PORT", "ninety", "QLARA_SIDECAR_METRICS_PORT: must be an integer between 0"),
        ("COUNTRY_LABELS", "IT,Italy", "QLARA_SIDECAR_COUNTRY_LABELS: not ISO 3166-1 alpha-2"),
        ("DASHBOARD_OIDC_ALLOWED", "example", "QLARA_SIDECAR_DASHBOARD_OIDC_ALLOWED: 'example'"),
        ("DASHBOARD_OIDC_METADATA_URL", "issuer.example.com", "QLARA_SIDECAR_DASHBOARD_OIDC"),
        ("COUNTRY_LABELS", "top:99", "QLARA_SIDECAR_COUNTRY_LABELS: top:N wants N from 0 to"),
    ],
)
def test_an_invalid_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(f"QLARA_SIDECAR_{variable}", value)

    with pytest.raises(SettingsError) as raised:
        load_settings()

    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


def test_single_sign_on_needs_the_provider_the_client_id_and_its_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "QLARA_SIDECAR_DASHBOARD_OIDC_METADATA_URL",
        "https://login.example.com/.well-known/openid-configuration",
    )
    with pytest.raises(SettingsError, match="DASHBOARD_OIDC_CLIENT_ID: must be set together"):
        load_settings()
    monkeypatch.setenv("QLARA_SIDECAR_DASHBOARD_OIDC_CLIENT_ID", "explorer")
    with pytest.raises(SettingsError, match="DASHBOARD_OIDC_CLIENT_SECRET: must be set together"):
        load_settings()
    monkeypatch.setenv("QLARA_SIDECAR_DASHBOARD_OIDC_CLIENT_SECRET", "s3cret-0123456789")
    monkeypatch.setenv("QLARA_SIDECAR_DASHBOARD_OIDC_ALLOWED", "@Example.com, ana@elsewhere.org")
    settings = load_settings()
    assert settings.dashboard_oidc_allowed == ("@example.com", "ana@elsewhere.org")


def test_basic_auth_needs_both_user_and_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QLARA_SIDECAR_BASIC_AUTH_USER", "qlara")

    with pytest.raises(SettingsError, match="QLARA_SIDECAR_BASIC_AUTH_PASSWORD: must be set"):
        load_settings()


def test_signing_secrets_are_read_as_a_list_and_a_bad_one_is_named_not_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    good = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    monkeypatch.setenv("QLARA_SIDECAR_WEBHOOK_SIGNING_SECRETS", f"{good}, whsec_C2FVsBQI")
    assert load_settings().signing_secrets() == (good, "whsec_C2FVsBQI")

    for bad in ("not-base64!", "whsec_"):
        monkeypatch.setenv("QLARA_SIDECAR_WEBHOOK_SIGNING_SECRETS", f"{good},{bad}")
        with pytest.raises(SettingsError) as info:
            load_settings()
        assert str(info.value).startswith("QLARA_SIDECAR_WEBHOOK_SIGNING_SECRETS: secret 2 is")
        assert "not-base64!" not in str(info.value)


def test_tls_needs_a_readable_certificate_and_key(tmp_path: Path) -> None:
    present = tmp_path / "cert.pem"
    present.write_text("-----BEGIN CERTIFICATE-----\n")
    missing = tmp_path / "key.pem"

    with pytest.raises(SettingsError, match="QLARA_SIDECAR_TLS_CERT_FILE: must be set together"):
        load_settings({"tls_key_file": str(present)})
    with pytest.raises(SettingsError, match=f"QLARA_SIDECAR_TLS_KEY_FILE: cannot read {missing}"):
        load_settings({"tls_cert_file": str(present), "tls_key_file": str(missing)})
    settings = load_settings({"tls_cert_file": str(present), "tls_key_file": str(present)})
    assert settings.tls_cert_file == present


@pytest.mark.parametrize(
    ("host", "metrics_host", "message"),
    [
        ("127.0.0.1", "127.0.0.1", "when both listen on 127.0.0.1"),
        ("0.0.0.0", "127.0.0.1", "while QLARA_SIDECAR_METRICS_HOST (127.0.0.1)"),  # noqa: S104
        ("127.0.0.1", "::", "while QLARA_SIDECAR_METRICS_HOST (::) overlaps"),
        ("localhost", "127.0.0.1", "overlaps QLARA_SIDECAR_HOST (localhost)"),
    ],
)
def test_the_metrics_port_must_differ_from_the_receivers_on_the_same_address(
    monkeypatch: pytest.MonkeyPatch, host: str, metrics_host: str, message: str
) -> None:
    monkeypatch.setenv("QLARA_SIDECAR_HOST", host)
    monkeypatch.setenv("QLARA_SIDECAR_METRICS_HOST", metrics_host)
    monkeypatch.setenv("QLARA_SIDECAR_PORT", "9000")
    monkeypatch.setenv("QLARA_SIDECAR_METRICS_PORT", "9000")

    with pytest.raises(SettingsError) as raised:
        load_settings()

    text = str(raised.value)
    assert text.startswith(
        "QLARA_SIDECAR_METRICS_PORT: must differ from QLARA_SIDECAR_PORT (9000) "
    )
    assert message in text
    assert "\n" not in text


def test_the_metrics_port_may_equal_the_receivers_on_another_address() -> None:
    settings = load_settings(
        {"host": "10.0.0.5", "port": 9000, "metrics_host": "127.0.0.1", "metrics_port": 9000}
    )

    assert (settings.metrics_host, settings.metrics_port) == ("127.0.0.1", 9000)


def test_a_separate_metrics_port_is_read_from_the_environment_and_passed_to_children(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("QLARA_SIDECAR_METRICS_PORT", "9100")

    settings = load_settings({"metrics_host": "10.0.0.7"})

    assert (settings.metrics_host, settings.metrics_port) == ("10.0.0.7", 9100)
    assert settings.to_env()["QLARA_SIDECAR_METRICS_PORT"] == "9100"
    assert settings.to_env()["QLARA_SIDECAR_METRICS_HOST"] == "10.0.0.7"


def test_the_cli_exits_2_with_one_line_naming_the_variable() -> None:
    # When a command starts with an invalid port
    result = run_cli("config", env={"QLARA_SIDECAR_PORT": "eighty"})

    # Then it exits 2 with a single line, no traceback
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "qlara-sidecar: error: QLARA_SIDECAR_PORT: must be an integer between 1 and 65535"
    ]
    assert "Traceback" not in result.stderr


def test_an_invalid_flag_value_names_the_variable_and_the_flag() -> None:
    result = run_cli("config", "--workers", "0")

    assert result.returncode == 2
    assert "QLARA_SIDECAR_WORKERS (--workers): must be an integer between 1 and 256" in (
        result.stderr
    )


def test_every_setting_has_a_description() -> None:
    for name, info in Settings.model_fields.items():
        assert info.description, f"{name} has no description"


@pytest.mark.parametrize(
    ("database", "workers", "expected"),
    [
        ("sqlite:///qlara-data/ledger.sqlite3", None, 1),
        ("postgresql+psycopg://user@db/qlara", None, 2),
        ("postgresql://user@db/qlara", None, 2),
        ("sqlite:///qlara-data/ledger.sqlite3", "3", 3),
    ],
)
def test_worker_processes_default_to_one_sqlite_writer_and_two_for_postgresql(
    monkeypatch: pytest.MonkeyPatch, database: str, workers: str | None, expected: int
) -> None:
    if workers is not None:
        monkeypatch.setenv("QLARA_SIDECAR_WORKERS", workers)
    assert wiring.worker_processes(load_settings(), database) == expected


@pytest.mark.parametrize(
    ("configured", "beside_workers", "expected"),
    [
        (None, True, 1),
        (None, False, os.cpu_count() or 1),
        ("3", True, 3),
        ("3", False, 3),
    ],
)
def test_receiver_processes_default_to_one_beside_the_workers_and_every_cpu_alone(
    monkeypatch: pytest.MonkeyPatch, configured: str | None, beside_workers: bool, expected: int
) -> None:
    if configured is not None:
        monkeypatch.setenv("QLARA_SIDECAR_RECEIVER_PROCESSES", configured)
    settings = load_settings()
    assert wiring.receiver_processes(settings, beside_workers=beside_workers) == expected
