"""The whole alerting path with real processes on loopback: `qlara-sidecar up`, Prometheus
scraping it every second and evaluating the rules (rendered with short windows), the example
Alertmanager configuration, and a pager standing in for every receiver.

The story, with the bounds the pager must hear each page within (generous: the machine is
shared). Scaled down: silence is 15 s without a request, near-total failure is over 90% of
a 20 s window for 2 s, a dead sidecar is 2 s without a scrape.

1. Qlara sends for 10 s (finals at real-life delays, so messages are in flight), then
   stops: QlaraWebhookSilent pages, not before the 15 s window has passed since the last
   request, and at most 60 s after that.
2. Traffic resumes: the pager hears the resolution within 60 s.
3. From 10 s into that traffic, every final status is an error:
   QlaraDeliveryFailureNearTotal pages, not before the burst, within 90 s of its start.
4. The sidecar is killed (every process of it): QlaraSidecarDown pages within 60 s.

The whole test takes about two minutes.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from alerts import thresholds_from, write
from tests.alerts.pipeline import (
    Pager,
    Service,
    Simulators,
    alertmanager,
    alertmanager_config_for_tests,
    prometheus,
    query,
)
from tests.e2e.sidecar_process import Sidecar, children_of, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.alerting]

#: The thresholds the rules are rendered with for this test; the rest keep their defaults.
SCALED = {
    "sidecar_down": {"for": "2s"},
    "silence": {"window": "15s"},
    "near_total": {"window": "20s", "min_outcomes": 5, "for": "2s"},
}
SILENCE_WINDOW_S = 15
SENDING_S = 10
BURST_AFTER_S = 10


def kill_everything_of(sidecar: Sidecar) -> None:
    """SIGKILL the supervisor and every process under it, as a crash of the host would."""
    assert sidecar.process is not None
    pids = [pid for pid, _ in children_of(sidecar.process.pid)]
    for pid in [sidecar.process.pid, *pids]:
        with contextlib.suppress(ProcessLookupError):  # it may have exited with its parent
            os.kill(pid, signal.SIGKILL)
    sidecar.process.wait(timeout=15)


def test_the_pager_hears_of_a_silence_its_end_a_failure_burst_and_a_dead_sidecar(
    make_sidecar: Any,
    prometheus_binary: str,
    alertmanager_binary: str,
    pager: Pager,
    simulators: list[Simulators],
    services: list[Service],
    tmp_path: Path,
) -> None:
    # Given the sidecar, an Alertmanager routing to the pager, and a Prometheus scraping the
    # sidecar and evaluating the rules rendered with short windows
    sidecar: Sidecar = make_sidecar(workers="1").start()
    rule_files = write(thresholds_from(SCALED), tmp_path / "rules")
    manager = alertmanager(
        alertmanager_binary, tmp_path / "alertmanager", alertmanager_config_for_tests(pager.url)
    )
    services.append(manager)
    manager.start()
    server = prometheus(
        prometheus_binary,
        tmp_path / "prometheus",
        job="qlara-sidecar",
        target=f"127.0.0.1:{sidecar.port}",
        rule_files=rule_files,
        alertmanager_port=manager.port,
    )
    services.append(server)
    server.start()
    wait_for(
        lambda: query(server, 'up{job="qlara-sidecar"} == 1'),
        timeout=60,
        what="Prometheus to scrape the sidecar",
    )
    # And the pipeline works end to end: the Watchdog reaches the dead man's switch
    pager.wait_for_alert(
        "Watchdog", status="firing", receiver="deadmansswitch", after=0, timeout=60
    )
    traffic = Simulators(sidecar, tmp_path)
    simulators.append(traffic)

    # When Qlara sends for 10 s, with finals at real-life delays, then falls silent
    sending = time.monotonic()
    first = traffic.start(
        "--rate", "20", "--time-scale", "1", "--seed", "4",
        "--silence-after", str(SENDING_S), "--duration", "600",
    )  # fmt: skip

    # Then the pager is told, once the silence has lasted the window, with messages pending
    silent, alert = pager.wait_for_alert(
        "QlaraWebhookSilent",
        status="firing",
        receiver="pager",
        after=sending,
        timeout=SENDING_S + SILENCE_WINDOW_S + 60,
    )
    print(f"QlaraWebhookSilent paged {silent.received_at - sending:.1f} s after sending began")
    assert silent.received_at >= sending + SENDING_S + SILENCE_WINDOW_S - 1
    assert sidecar.read("/v1/stats/webhook")["pending"] > 0
    pending = re.search(r"while (\d+) messages are pending", alert["annotations"]["description"])
    assert pending is not None, alert["annotations"]
    assert int(pending.group(1)) > 0
    assert alert["labels"]["severity"] == "critical"

    # When traffic resumes, and after 10 s every final status is an error
    first.terminate()
    first.wait(timeout=15)
    resumed = time.monotonic()
    traffic.start(
        "--rate", "30", "--time-scale", "0.01", "--seed", "5",
        "--error-burst", f"{BURST_AFTER_S}:300:1.0", "--duration", "300",
    )  # fmt: skip

    # Then the pager hears the silence resolved
    resolved, _ = pager.wait_for_alert(
        "QlaraWebhookSilent", status="resolved", receiver="pager", after=resumed, timeout=60
    )
    print(f"QlaraWebhookSilent resolved {resolved.received_at - resumed:.1f} s after resuming")
    # And, once the burst fills the window, that deliveries fail almost entirely, with a
    # link to the explorer's failures page for that channel over the alert's window
    failing, alert = pager.wait_for_alert(
        "QlaraDeliveryFailureNearTotal",
        status="firing",
        receiver="pager",
        after=resumed,
        timeout=BURST_AFTER_S + 90,
    )
    print(f"NearTotal paged {failing.received_at - resumed - BURST_AFTER_S:.1f} s into the burst")
    assert failing.received_at >= resumed + BURST_AFTER_S
    channel = alert["labels"]["channel"]
    assert channel in {"sms", "rcs", "whatsapp"}
    assert alert["annotations"]["dashboard_url"] == (
        f"http://127.0.0.1:8501/failures?channel={channel}&window=20s"
    )
    # The share is over a sliding window that may still hold outcomes from before the
    # burst: what the alert promises is a share above its threshold, not an exact one.
    share = re.match(
        rf"([\d.]+)% of {channel} final outcomes over the last 20s were error or expired",
        alert["annotations"]["description"],
    )
    assert share is not None, alert["annotations"]
    assert float(share.group(1)) > 90

    # When the sidecar dies
    traffic.stop_all()
    killed = time.monotonic()
    kill_everything_of(sidecar)

    # Then the pager is told it is down
    down, alert = pager.wait_for_alert(
        "QlaraSidecarDown", status="firing", receiver="pager", after=killed, timeout=60
    )
    print(f"QlaraSidecarDown paged {down.received_at - killed:.1f} s after the kill")
    assert alert["labels"]["job"] == "qlara-sidecar"
