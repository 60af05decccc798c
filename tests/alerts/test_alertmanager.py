"""The example Alertmanager configuration: amtool accepts it, each alert reaches the receiver
its severity names, and a real Alertmanager applies the inhibitions."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.alerts.pipeline import (
    ALERTMANAGER_EXAMPLE,
    Pager,
    Service,
    alertmanager,
    alertmanager_config_for_tests,
)
from tests.alerts.test_rules import SEVERITIES
from tests.e2e.sidecar_process import wait_for

#: Where each severity goes.
RECEIVERS = {"critical": "pager", "warning": "chat", "none": "deadmansswitch"}


def amtool_run(amtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([amtool, *args], capture_output=True, text=True, timeout=60, check=False)


def test_amtool_accepts_the_example_configuration(amtool: str) -> None:
    done = amtool_run(amtool, "check-config", str(ALERTMANAGER_EXAMPLE))

    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout
    assert "3 inhibit rules" in done.stdout


@pytest.mark.parametrize(("alertname", "severity"), sorted(SEVERITIES.items()))
def test_each_alert_is_routed_to_the_receiver_of_its_severity(
    amtool: str, alertname: str, severity: str
) -> None:
    expected = "deadmansswitch" if alertname == "Watchdog" else RECEIVERS[severity]

    done = amtool_run(
        amtool,
        "config",
        "routes",
        "test",
        f"--config.file={ALERTMANAGER_EXAMPLE}",
        f"--verify.receivers={expected}",
        f"alertname={alertname}",
        f"severity={severity}",
        "service=qlara-sidecar",
        "channel=sms",
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == expected


def test_an_alert_of_another_service_falls_to_the_default_chat_receiver(amtool: str) -> None:
    done = amtool_run(
        amtool,
        "config",
        "routes",
        "test",
        f"--config.file={ALERTMANAGER_EXAMPLE}",
        "--verify.receivers=chat",
        "alertname=DiskFull",
        "severity=critical",
    )

    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def running_alertmanager(
    alertmanager_binary: str, tmp_path: Path, pager: Pager
) -> Iterator[Service]:
    service = alertmanager(
        alertmanager_binary, tmp_path / "alertmanager", alertmanager_config_for_tests(pager.url)
    )
    try:
        service.start()
        yield service
    finally:
        service.stop()


def _post(service: Service, *alerts: dict[str, str]) -> None:
    now = datetime.now(UTC)
    body = [
        {
            "labels": {"service": "qlara-sidecar", "severity": "warning", **labels},
            "startsAt": now.isoformat(),
            "endsAt": (now + timedelta(minutes=10)).isoformat(),
        }
        for labels in alerts
    ]
    httpx.post(f"{service.url}/api/v2/alerts", json=body, timeout=10).raise_for_status()


def _inhibited(service: Service, count: int) -> dict[tuple[str, str], bool]:
    """(alertname, channel) -> whether the Alertmanager holds it inhibited, once it holds
    ``count`` alerts."""

    def listed() -> list[dict[str, Any]] | None:
        response = httpx.get(f"{service.url}/api/v2/alerts", timeout=10)
        response.raise_for_status()
        alerts: list[dict[str, Any]] = response.json()
        return alerts if len(alerts) == count else None

    alerts: list[dict[str, Any]] = wait_for(listed, timeout=30, what=f"{count} alerts")
    return {
        (a["labels"]["alertname"], a["labels"].get("channel", "")): bool(a["status"]["inhibitedBy"])
        for a in alerts
    }


def test_a_dead_sidecar_inhibits_every_other_sidecar_alert_but_the_watchdog(
    running_alertmanager: Service,
) -> None:
    _post(
        running_alertmanager,
        {"alertname": "QlaraSidecarDown", "severity": "critical", "job": "qlara-sidecar"},
        {"alertname": "QlaraWebhookSilent", "severity": "critical"},
        {"alertname": "QlaraMessagesStuck", "channel": "sms"},
        {"alertname": "Watchdog", "severity": "none"},
    )

    assert _inhibited(running_alertmanager, 4) == {
        ("QlaraSidecarDown", ""): False,
        ("QlaraWebhookSilent", ""): True,
        ("QlaraMessagesStuck", "sms"): True,
        ("Watchdog", ""): False,
    }


def test_a_silent_webhook_inhibits_the_channel_silence_and_the_failure_alerts(
    running_alertmanager: Service,
) -> None:
    _post(
        running_alertmanager,
        {"alertname": "QlaraWebhookSilent", "severity": "critical"},
        {"alertname": "QlaraWebhookChannelSilent", "channel": "rcs"},
        {"alertname": "QlaraDeliveryFailureSpike", "channel": "sms"},
        {"alertname": "QlaraDeliveryFailureBudgetBurn", "severity": "critical", "channel": "sms"},
        {"alertname": "QlaraMessagesStuck", "channel": "sms"},
    )

    assert _inhibited(running_alertmanager, 5) == {
        ("QlaraWebhookSilent", ""): False,
        ("QlaraWebhookChannelSilent", "rcs"): True,
        ("QlaraDeliveryFailureSpike", "sms"): True,
        ("QlaraDeliveryFailureBudgetBurn", "sms"): True,
        ("QlaraMessagesStuck", "sms"): False,
    }


def test_a_near_total_failure_inhibits_burn_and_spike_of_its_own_channel_only(
    running_alertmanager: Service,
) -> None:
    _post(
        running_alertmanager,
        {"alertname": "QlaraDeliveryFailureNearTotal", "severity": "critical", "channel": "sms"},
        {"alertname": "QlaraDeliveryFailureBudgetBurn", "severity": "critical", "channel": "sms"},
        {"alertname": "QlaraDeliveryFailureBudgetBurnSlow", "channel": "sms"},
        {"alertname": "QlaraDeliveryFailureSpike", "channel": "sms"},
        {"alertname": "QlaraDeliveryFailureSpike", "channel": "whatsapp"},
        {"alertname": "QlaraDeliveryLatencyHigh", "channel": "sms"},
    )

    assert _inhibited(running_alertmanager, 6) == {
        ("QlaraDeliveryFailureNearTotal", "sms"): False,
        ("QlaraDeliveryFailureBudgetBurn", "sms"): True,
        ("QlaraDeliveryFailureBudgetBurnSlow", "sms"): True,
        ("QlaraDeliveryFailureSpike", "sms"): True,
        ("QlaraDeliveryFailureSpike", "whatsapp"): False,
        ("QlaraDeliveryLatencyHigh", "sms"): False,
    }
