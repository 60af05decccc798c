"""Bad input over real HTTP: each gets its 4xx, none reaches the ledger, never a 500."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from tests.e2e.sidecar_process import WEBHOOK_TOKEN, Sidecar, wait_for

pytestmark = pytest.mark.e2e

GOOD = {
    "messageId": "good-1",
    "status": "SENT",
    "timestamp": "2025-04-08T14:30:00Z",
    "channel": "sms",
    "phoneNumber": "+393901234567",
}


def test_each_bad_input_gets_its_status_and_only_acknowledged_events_are_recorded(
    make_sidecar: Callable[..., Sidecar],
) -> None:
    sidecar = make_sidecar(max_body_bytes="4096").start()
    url = sidecar.webhook_url
    json_type = {"Content-Type": "application/json"}
    cases: list[tuple[str, int, Callable[[httpx.Client], httpx.Response]]] = [
        ("malformed JSON", 400, lambda c: c.post(url, content=b"{nope", headers=json_type)),
        ("empty body", 400, lambda c: c.post(url, content=b"", headers=json_type)),
        ("top-level scalar", 400, lambda c: c.post(url, content=b"12", headers=json_type)),
        (
            "missing message id",
            400,
            lambda c: c.post(url, json={k: v for k, v in GOOD.items() if k != "messageId"}),
        ),
        ("wrong type", 400, lambda c: c.post(url, json={**GOOD, "messageId": 5})),
        (
            "NaN",
            400,
            lambda c: c.post(url, content=b'{"messageId":"x","price":NaN}', headers=json_type),
        ),
        (
            "Infinity",
            400,
            lambda c: c.post(url, content=b'{"messageId":"x","price":1e999}', headers=json_type),
        ),
        (
            "too large",
            413,
            lambda c: c.post(url, content=b"[" + b" " * 5000 + b"]", headers=json_type),
        ),
        (
            "wrong content type",
            415,
            lambda c: c.post(url, content=json.dumps(GOOD), headers={"Content-Type": "text/csv"}),
        ),
        ("wrong method", 405, lambda c: c.get(url)),
        ("wrong token", 401, lambda c: c.post(url.replace(WEBHOOK_TOKEN, "nope"), json=GOOD)),
        (
            "non-ASCII token",
            401,
            lambda c: c.post(f"{sidecar.base_url}/webhook/%C3%A9t%C3%A9", json=GOOD),
        ),
        ("missing token", 401, lambda c: c.post(f"{sidecar.base_url}/webhook", json=GOOD)),
        (
            "nested too deeply",
            400,
            lambda c: c.post(url, content=b"[" * 1500 + b"]" * 1500, headers=json_type),
        ),
    ]
    got = {}
    with httpx.Client(timeout=10) as client:
        for name, _, send in cases:
            response = send(client)
            got[name] = response.status_code
            assert response.headers["content-type"].startswith("application/json"), name
        # an array: the valid items are accepted, the invalid one answered by index
        mixed = client.post(
            url, json=[GOOD, {**GOOD, "timestamp": "soon"}, {**GOOD, "status": "DELIVERED"}]
        )
        good_single = client.post(url, json={**GOOD, "messageId": "good-2"})
        slashed = client.post(url, json={**GOOD, "messageId": "acct/7//good-3"})
        # implausible but well-formed: kept, timed at their receipt
        odd = [
            client.post(url, json={**GOOD, "messageId": "odd-1", "timestamp": 10**400}),
            client.post(
                url, json={**GOOD, "messageId": "odd-2", "timestamp": "9999-12-31T23:59:59-01:00"}
            ),
        ]
    assert slashed.status_code == 200
    assert [r.status_code for r in odd] == [200, 200]
    assert got == {name: status for name, status, _ in cases}
    assert mixed.status_code == 200
    assert mixed.json()["accepted"] == 2
    assert [(r["index"], r["field"]) for r in mixed.json()["rejected"]] == [(1, "timestamp")]
    assert good_single.json() == {"status": "received"}

    # Only the six acknowledged events reach the ledger
    stats = wait_for(
        lambda: (s := sidecar.read("/v1/stats/webhook"))["eventsTotal"] >= 6 and s,
        timeout=60,
        what="the acknowledged events",
    )
    assert stats["eventsTotal"] == 6
    listed = sidecar.read("/v1/messages", limit=50)
    assert sorted(m["messageId"] for m in listed["items"]) == [
        "acct/7//good-3",
        "good-1",
        "good-2",
        "odd-1",
        "odd-2",
    ]
    assert [e["timeFromReceipt"] for e in sidecar.read("/v1/messages/odd-1")["events"]] == [True]
    # An id with slashes is read back, its slashes escaped or not
    assert sidecar.read("/v1/messages/acct/7//good-3")["messageId"] == "acct/7//good-3"
    assert sidecar.read("/v1/messages/acct%2F7%2F%2Fgood-3")["messageId"] == "acct/7//good-3"
    # The token and the phone number never reach the logs
    log = sidecar.log()
    assert "+393901234567" not in log
    assert log.count(WEBHOOK_TOKEN) <= 1
