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
    assert [e["status"] for e in served.fake.log if e["status"] != 200] == []
    assert most_in_any_window(answered, 1.0) <= limits.per_second
    assert most_in_any_window(answered, 60.0) <= limits.per_minute
    assert metric(sidecar, "qlara_api_requests_total", code="200") == len(served.fake.log)
