"""What an attacker tries against a running sidecar, over real HTTP, and stays refused: the
read API without its token or with the webhook's, SQL in every query parameter, path tricks,
an oversized body announced, the token anywhere but where it belongs, a flood of guesses."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

import httpx
import pytest

from tests.e2e.sidecar_process import READ_TOKEN, WEBHOOK_TOKEN, Sidecar, wait_for

pytestmark = pytest.mark.e2e

GOOD = {
    "messageId": "victim-1",
    "status": "DELIVERED",
    "timestamp": "2025-04-08T14:30:00Z",
    "channel": "sms",
    "phoneNumber": "+393901234567",
}
INJECTIONS = ["' OR '1'='1", "x'; DROP TABLE messages; --", "%", "_", "\\", "\x00", "*"]


def test_what_was_refused_stays_refused(make_sidecar: Callable[..., Sidecar]) -> None:
    sidecar = make_sidecar().start()
    base = sidecar.base_url
    with httpx.Client(timeout=10) as client:
        assert client.post(sidecar.webhook_url, json=GOOD).status_code == 200
        wait_for(lambda: sidecar.read("/v1/stats/webhook")["eventsTotal"] == 1, timeout=60,
                 what="the victim's event")  # fmt: skip

        # The read API: no token, the webhook's token, a token in the query string
        assert client.get(f"{base}/v1/messages/victim-1").status_code == 401
        webhook_bearer = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}
        assert client.get(f"{base}/v1/messages/victim-1", headers=webhook_bearer).status_code == 401
        assert client.get(f"{base}/v1/messages/victim-1?token={READ_TOKEN}").status_code == 401
        # The webhook: its token in the query string, or as a bearer token, is no token
        assert client.post(f"{base}/webhook?token={WEBHOOK_TOKEN}", json=GOOD).status_code == 401
        bearer = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}
        assert client.post(f"{base}/webhook", json=GOOD, headers=bearer).status_code == 401

        # SQL in every text parameter finds nothing and breaks nothing
        reader = {"Authorization": f"Bearer {READ_TOKEN}"}
        for value in INJECTIONS:
            for name in ("customerMessageId", "phone", "status", "channel"):
                answer = client.get(f"{base}/v1/messages", params={name: value}, headers=reader)
                assert answer.status_code in (200, 400), (name, value, answer.status_code)
                if answer.status_code == 200:
                    assert answer.json()["items"] == [], (name, value)
            path = f"{base}/v1/messages/{quote(value, safe='')}"
            assert client.get(path, headers=reader).status_code == 404
        assert sidecar.read("/v1/messages/victim-1")["status"] == "delivered"

        # Path tricks reach nothing but JSON 404s
        for path in ("/v1/../webhook", "/v1/messages/..%2F..%2Fetc%2Fpasswd", "/schema", "/.env"):
            answer = client.get(f"{base}{path}", headers=reader)
            assert answer.status_code in (401, 404), (path, answer.status_code)
            assert answer.headers["content-type"].startswith("application/json")

    # A body announced larger than the limit is refused before it is read (sent raw: httpx
    # would fix the Content-Length)
    raw = _raw_request(
        sidecar.port,
        f"POST /webhook/{WEBHOOK_TOKEN} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000000000000\r\n\r\n",
    )
    assert raw.startswith(b"HTTP/1.1 413")

    # And a flood of guessed tokens is slowed, while the real token still gets in
    with httpx.Client(timeout=10) as client:
        guesses = [
            client.post(f"{base}/webhook/guess-{n}", json=GOOD).status_code for n in range(30)
        ]
        assert guesses.count(429) >= 5
        assert (
            client.post(sidecar.webhook_url, json={**GOOD, "messageId": "after"}).status_code == 200
        )
    # Nothing of the attack reached the ledger, and no secret reached the log
    stats = wait_for(lambda: (s := sidecar.read("/v1/stats/webhook"))["eventsTotal"] == 2 and s,
                     timeout=60, what="the one event sent after the flood")  # fmt: skip
    assert stats["eventsTotal"] == 2
    log = sidecar.log()
    assert READ_TOKEN not in log
    assert "+393901234567" not in log


def _raw_request(port: int, head: str) -> bytes:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode())
        return sock.recv(4096)
