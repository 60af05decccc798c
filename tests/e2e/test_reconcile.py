"""End to end: `up` with the reconciler pointed at the fake Qlara. The application reports its
sends, Qlara's webhook delivers 90% of the final statuses and drops the rest; the reconciler
fills in exactly the dropped ones, within the fake's rate limits."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from qlara_api.fake import most_in_any_window
from qlara_api.limits import Limits
from tests.e2e.sidecar_process import Sidecar, post_all, wait_for
from tests.e2e.test_sends import SEND_TOKEN, metric
from tests.fake_qlara import API_KEY, Served

pytestmark = pytest.mark.e2e

MESSAGES = 40
DROPPED = {3, 11, 19, 27}  # final statuses the webhook never delivers
OUTCOMES = {n: ("ERROR" if n % 5 == 0 else "DELIVERED") for n in range(MESSAGES)}


@pytest.mark.parametrize("variant", ["messages", "partner-gateway"])
def test_the_reconciler_fills_exactly_what_the_webhook_dropped(
    make_sidecar: Callable[..., Sidecar], serve_fake: Callable[..., Served], variant: str
) -> None:
    # Given Qlara's API (the fake, 5 calls a second, 60 a minute) knowing every outcome
    limits = Limits(per_second=5, per_minute=60)
    served = serve_fake(limits=limits)
    served.fake.add(
        [
            {
                "messageId": f"m-{n}",
                "customerMessageId": f"order-{n}",
                "channel": "sms",
                "status": OUTCOMES[n],
                "description": "Absent subscriber" if OUTCOMES[n] == "ERROR" else None,
            }
            for n in range(MESSAGES)
        ]
    )
    # And the sidecar polling it for SMS left without a final status for 5 s (time for the
    # webhooks below to be recorded first)
    sidecar = make_sidecar(
        send_token=SEND_TOKEN,
        qlara_api_key=API_KEY,
        qlara_api_url=served.api,
        qlara_api_variant=variant,
        qlara_api_limits="5/s,60/m",
        reconcile_after="sms=5s",
        reconcile_interval="1",
    ).start()
    assert "Reconciler:    on" in sidecar.log()

    # When the application reports its 40 sends, and Qlara's webhook delivers the outcome of
    # all but 4 at once
    sent_at = datetime.now(UTC)
    sends = [
        {
            "messageId": f"m-{n}",
            "customerMessageId": f"order-{n}",
            "channel": "sms",
            "sentAt": sent_at.isoformat(),
        }
        for n in range(MESSAGES)
    ]
    answer = httpx.post(
        f"{sidecar.base_url}/v1/sends",
        json=sends,
        headers={"Authorization": f"Bearer {SEND_TOKEN}"},
        timeout=10,
    )
    assert answer.status_code == 200
    delivered_at = sent_at + timedelta(seconds=1)
    bodies = [
        json.dumps(
            {
                "messageId": f"m-{n}",
                "customerMessageId": f"order-{n}",
                "status": OUTCOMES[n],
                "timestamp": delivered_at.isoformat(),
                "channel": "sms",
                "error": "Absent subscriber" if OUTCOMES[n] == "ERROR" else None,
            }
        ).encode()
        for n in range(MESSAGES)
        if n not in DROPPED
    ]
    assert post_all(sidecar.webhook_url, bodies).statuses == [200] * len(bodies)

    # Then every message reaches its true final state
    def all_final() -> Any:
        stats = sidecar.read("/v1/stats/webhook")
        return stats if stats["pending"] == 0 and stats["eventsTotal"] == 2 * MESSAGES else None

    wait_for(all_final, timeout=90, what="every message to be final")
    for n in range(MESSAGES):
        got = sidecar.read(f"/v1/messages/m-{n}")
        assert got["status"] == OUTCOMES[n].lower(), n
        sources = sorted(e["source"] for e in got["events"])
        assert sources == ["app", "poll" if n in DROPPED else "webhook"], n
        # a polled final gives no latency; the webhook's do
        assert (got["latencySeconds"] is None) == (n in DROPPED), n

    # And the filled count is the dropped count, exactly
    wait_for(
        lambda: metric(sidecar, "qlara_reconcile_filled_total") == len(DROPPED),
        timeout=30,
        what="the filled count to reach the dropped count",
    )
    assert metric(sidecar, "qlara_reconcile_polls_total", result="filled") == len(DROPPED)
    # And, from the fake's own log, no second and no minute held more than the limit
    answered = [entry["t"] for entry in served.fake.log]
    polls = [e for e in served.fake.log if "/messages/status" in e["path"]]
    assert [e["status"] for e in polls if e["status"] != 200] == []
    assert most_in_any_window(answered, 1.0) <= limits.per_second
    assert most_in_any_window(answered, 60.0) <= limits.per_minute
    assert metric(sidecar, "qlara_api_requests_total", endpoint="status_batch") == len(polls)


@pytest.mark.parametrize("shape", ["A", "B", "C"])
def test_simulated_traffic_with_dropped_finals_is_made_whole_for_every_shape(
    make_sidecar: Callable[..., Sidecar],
    serve_fake: Callable[..., Served],
    tmp_path: Any,
    shape: str,
) -> None:
    import subprocess
    import sys
    from pathlib import Path

    # Given the sidecar polling the fake Qlara for anything left without a final status 3 s
    served = serve_fake()
    sidecar = make_sidecar(
        send_token=SEND_TOKEN,
        qlara_api_key=API_KEY,
        qlara_api_url=served.api,
        reconcile_after="sms=3s,rcs=3s,whatsapp=3s,other=3s",
        reconcile_interval="1",
    ).start()

    # When the simulator sends 80 messages of one shape, reports every send as the
    # application would, and drops 10% of the final statuses (telling the fake instead)
    summary_file = tmp_path / "summary.json"
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("qlara-sidecar")),
            "simulate",
            "--messages", "80",
            "--rate", "100",
            "--shapes", shape,
            "--send-report",
            "--drop", "0.1",
            "--fake-qlara", served.base_url,
            "--seed", "13",
            "--time-scale", "0.002",
            "--progress", "none",
            "--summary-file", str(summary_file),
        ],
        env=sidecar.env,
        capture_output=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    summary = json.loads(summary_file.read_text())
    assert summary["non_200"] == 0
    assert summary["sends"] > 0
    assert summary["dropped"] > 0

    # Then every message reaches its final state, the dropped ones by polling
    wait_for(
        lambda: sidecar.read("/v1/stats/webhook")["pending"] == 0,
        timeout=90,
        what="every message to be final",
    )
    wait_for(
        lambda: metric(sidecar, "qlara_reconcile_filled_total") == summary["dropped"],
        timeout=30,
        what="the filled count to reach the dropped count",
    )
    truths = {m.message_id: m for m in served.fake.messages.values()}
    assert len(truths) == summary["dropped"]
    for message_id, truth in truths.items():
        got = sidecar.read(f"/v1/messages/{message_id}")
        assert got["status"] == truth.status.lower(), message_id
        assert [e["source"] for e in got["events"] if e["source"] == "poll"] == ["poll"]
    # And the fake never answered a 429 nor saw more than its limits
    log = served.fake.log
    assert [e for e in log if e["status"] not in (200, 404)] == []
    times = [e["t"] for e in log]
    assert most_in_any_window(times, 1.0) <= 50
    assert most_in_any_window(times, 60.0) <= 1000
