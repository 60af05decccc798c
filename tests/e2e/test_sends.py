"""End to end: the application reports its sends with the README's client, Qlara's platform
webhook (shape B, which never sends SENT) reports the outcomes, and the sidecar knows what is
still missing."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.sidecar_process import Sidecar, post_all, wait_for

pytestmark = pytest.mark.e2e

SEND_TOKEN = "e2e-send-token-0123456789"
README = Path(__file__).resolve().parents[2] / "README.md"


def readme_client(base_url: str) -> Callable[..., None]:
    """The README's Python client, as written, pointed at ``base_url``."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    [code] = [block for block in blocks if "def report_sent" in block]
    code = code.replace("http://127.0.0.1:8000", base_url)
    scope: dict[str, Any] = {"SEND_TOKEN": SEND_TOKEN}
    exec(code, scope)  # noqa: S102 - the README's own example, run as a user would
    return scope["report_sent"]  # type: ignore[no-any-return]


def delivery(message_id: str, customer_id: str | None, at: datetime, code: int = 3) -> bytes:
    """A shape-B DELIVERY event (the platform guide's webhook: no SENT event exists)."""
    fields = [
        '"eventType":"DELIVERY"',
        f'"messageId":"{message_id}"',
        '"destination":"+393901234567"',
        f'"statusCode":{code}',
        '"channel":"SMS"',
        f'"timestamp":"{at.isoformat().replace("+00:00", "Z")}"',
    ]
    if customer_id is not None:
        fields.append(f'"customerMessageId":"{customer_id}"')
    return ("{" + ",".join(fields) + "}").encode()


def metric(sidecar: Sidecar, name: str, **labels: str) -> float:
    text = httpx.get(f"{sidecar.base_url}/metrics", timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_sends_reported_by_the_application_make_shape_b_traffic_pending_aware(
    make_sidecar: Callable[..., Sidecar],
) -> None:
    sidecar = make_sidecar(send_token=SEND_TOKEN).start()
    report_sent = readme_client(sidecar.base_url)

    # Given 30 sends the application reported, by messageId, customerMessageId or both
    ways = ("message", "customer", "both")
    sends = [(f"m-{n}", f"order-{n}", ways[n % 3]) for n in range(30)]
    for message_id, customer_id, way in sends:
        report_sent(
            message_id if way != "customer" else None,
            customer_id if way != "message" else None,
            "sms",
        )

    # And Qlara's shape-B deliveries for the first 20 (the first 2 failed), naming both ids,
    # sent as Qlara would: after the sends, each 4 s after "now"
    now = datetime.now(UTC)
    bodies = [
        delivery(message_id, customer_id, now + timedelta(seconds=4), 3 if n >= 2 else 6)
        for n, (message_id, customer_id, _) in enumerate(sends[:20])
    ]
    result = post_all(sidecar.webhook_url, bodies)
    assert result.statuses == [200] * len(bodies)

    # Then the 10 without an outcome are pending, and the 20 with one are final
    def settled() -> Any:
        stats = sidecar.read("/v1/stats/webhook")
        return stats if stats["pending"] == 10 and stats["eventsTotal"] == 50 else None

    wait_for(settled, timeout=60, what="the sends and deliveries to be recorded")
    for n, (message_id, customer_id, way) in enumerate(sends):
        # a send by customer id alone waits under a placeholder until Qlara names both
        shown = message_id if way != "customer" or n < 20 else f"cmid:{customer_id}"
        got = sidecar.read(f"/v1/messages/{shown}")
        assert got["sentAt"] is not None, shown
        if n < 20:
            assert got["status"] == ("delivered" if n >= 2 else "error"), shown
            assert got["latencySeconds"] is not None, shown
            assert got["latencySeconds"] > 0, shown
            assert sorted(e["source"] for e in got["events"]) == ["app", "webhook"], shown
        else:
            assert (got["status"], got["isFinal"]) == ("sent", False), shown

    # And the metrics agree: pending per channel, sends counted apart from Qlara's events
    wait_for(
        lambda: metric(sidecar, "qlara_messages_pending", channel="sms") == 10,
        timeout=30,
        what="qlara_messages_pending to show the 10 waiting",
    )
    assert metric(sidecar, "qlara_sends_requests_total", outcome="accepted") == 30
    assert metric(sidecar, "qlara_events_total", status="sent") == 0
    assert metric(sidecar, "qlara_delivery_latency_seconds_count", channel="sms") == 20
