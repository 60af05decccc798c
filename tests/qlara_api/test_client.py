"""The Qlara API client against the fake Qlara over HTTP: both surfaces, the limits obeyed
(from the fake's own log), 429s waited out, 500s tripping the breaker, errors typed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from qlara_api import (
    BadKey,
    CircuitBreaker,
    CircuitOpen,
    Limits,
    PolledStatus,
    QlaraClient,
    RateLimiter,
    ServerError,
    Variant,
)
from qlara_api.fake import most_in_any_window
from tests.e2e.sidecar_process import wait_for
from tests.fake_qlara import API_KEY, Served

MESSAGES = [
    {"messageId": "m-1", "customerMessageId": "order-1", "channel": "sms", "status": "DELIVERED"},
    {"messageId": "m-2", "customerMessageId": "order-2", "channel": "whatsapp", "status": "READ"},
    {
        "messageId": "m-3",
        "customerMessageId": "order-3",
        "channel": "sms",
        "status": "ERROR",
        "description": "Absent subscriber",
    },
]


def client_for(served: Served, variant: Variant = "messages", **kwargs: Any) -> QlaraClient:
    return QlaraClient(API_KEY, base_url=served.api, variant=variant, **kwargs)


def fed(serve_fake: Callable[..., Served], **kwargs: Any) -> Served:
    served = serve_fake(**kwargs)
    served.fake.add(MESSAGES)
    return served


@pytest.mark.parametrize("variant", ["messages", "partner-gateway"])
def test_both_surfaces_answer_one_status_and_a_batch(
    serve_fake: Callable[..., Served], variant: Variant
) -> None:
    served = fed(serve_fake)
    client = client_for(served, variant)

    assert client.status("order-1", "sms") == PolledStatus("order-1", "delivered", None)
    assert client.status("order-3", "sms") == PolledStatus("order-3", "error", "Absent subscriber")
    assert client.status("order-404", "sms") is None
    batch = client.statuses(["order-1", "order-3", "order-404"], "sms")
    assert {k: v.status for k, v in batch.items()} == {"order-1": "delivered", "order-3": "error"}


def test_the_partner_gateway_wants_the_right_channel(serve_fake: Callable[..., Served]) -> None:
    served = fed(serve_fake)
    client = client_for(served, "partner-gateway")
    assert client.status("order-2", "sms") is None  # a wrong channel is a 404 there
    answer = client.status("order-2", "whatsapp")
    assert answer is not None
    assert answer.status == "read"
    with pytest.raises(ValueError, match="channel"):
        client.status("order-2", None)


def test_a_wrong_key_is_a_typed_error_that_names_no_key(serve_fake: Callable[..., Served]) -> None:
    served = fed(serve_fake)
    client = QlaraClient("not-the-key-xyz", base_url=served.api)
    with pytest.raises(BadKey) as caught:
        client.status("order-1")
    assert "not-the-key-xyz" not in str(caught.value)


def test_the_fake_never_sees_more_than_the_limit_and_every_answer_arrives(
    serve_fake: Callable[..., Served],
) -> None:
    # Given a scaled-down account (5 a "second" of 0.05 s, 15 a "minute" of 3 s), on both
    # sides
    limits = Limits(per_second=5, per_minute=15, time_scale=0.05)
    served = fed(serve_fake, limits=limits)
    client = client_for(served, limiter=RateLimiter(limits), attempts=10)

    # When 40 statuses are asked one by one, as fast as the client lets them go
    answers = [client.status(f"order-{1 + n % 3}") for n in range(40)]

    # Then every one was answered
    assert all(answer is not None for answer in answers)
    # and, by the fake's own log, no window held more than the limit
    log = served.fake.log
    admitted = [entry["t"] for entry in log if entry["status"] != 429]
    assert len(admitted) == 40
    assert most_in_any_window(admitted, 0.05) <= 5
    assert most_in_any_window(admitted, 3.0) <= 15


def test_a_429_is_waited_out_as_told_and_nothing_is_lost(serve_fake: Callable[..., Served]) -> None:
    # Given a fake whose limit is lower than the client believes (another client shares the
    # key): 3 a "second" of 0.5 s there, 50 here
    served = fed(serve_fake, limits=Limits(per_second=3, per_minute=1000, time_scale=0.5))
    client = client_for(served, attempts=10)

    answers = [client.status("order-1") for _ in range(8)]

    assert [a.status if a else None for a in answers] == ["delivered"] * 8
    log = served.fake.log
    assert Counter(entry["status"] for entry in log)[200] == 8
    refused = [n for n, entry in enumerate(log) if entry["status"] == 429]
    assert refused  # the limit was met
    for n in refused:  # and after each 429 the next request came no sooner than told
        assert log[n + 1]["t"] - log[n]["t"] >= log[n]["retryAfter"] - 2e-6


def test_repeated_500s_open_the_breaker_which_closes_once_qlara_recovers(
    serve_fake: Callable[..., Served],
) -> None:
    served = fed(serve_fake)
    served.fake.errors = 4
    breaker = CircuitBreaker(failures=3, cooldown=0.2, successes=2)
    client = client_for(served, breaker=breaker)

    for _ in range(3):
        with pytest.raises(ServerError):
            client.status("order-1")
    # Open: the next call is refused without reaching Qlara
    calls = len(served.fake.log)
    with pytest.raises(CircuitOpen):
        client.status("order-1")
    assert len(served.fake.log) == calls

    # After the cooldown one probe goes; it fails (the 4th 500): open again, twice as long
    wait_until(lambda: breaker.state == "half_open")
    with pytest.raises(ServerError):
        client.status("order-1")
    assert breaker.state == "open"

    # Qlara recovers: after the longer cooldown, two good probes close it
    wait_until(lambda: breaker.state == "half_open")
    assert client.status("order-1") is not None
    assert client.status("order-1") is not None
    assert breaker.state == "closed"
    assert [e["status"] for e in served.fake.log] == [500, 500, 500, 500, 200, 200]


def test_a_429_body_header_or_reset_names_the_wait() -> None:
    from qlara_api import retry_after_of

    def answer(body: bytes, headers: dict[str, str]) -> httpx.Response:
        return httpx.Response(429, content=body, headers=headers)

    assert retry_after_of(answer(b'{"retryAfter":12}', {"Retry-After": "3"})) == 12
    assert retry_after_of(answer(b"nope", {"Retry-After": "3"})) == 3
    assert retry_after_of(answer(b"{}", {"X-RateLimit-Reset": "7"})) == 7
    assert retry_after_of(answer(b'{"retryAfter":-1}', {})) == 5  # the default


def test_registration_flows_of_both_surfaces(serve_fake: Callable[..., Served]) -> None:
    served = serve_fake()
    gateway = client_for(served, "partner-gateway")
    assert gateway.registration() is None
    gateway.register("https://hooks.example.com/webhook/a")  # POST creates
    gateway.register("https://hooks.example.com/webhook/b")  # 409, then PUT replaces
    on_file = gateway.registration()
    assert on_file is not None
    assert on_file.url == "https://hooks.example.com/webhook/b"
    assert [(e["method"], e["status"]) for e in served.fake.log] == [
        ("GET", 404),
        ("POST", 201),
        ("POST", 409),
        ("PUT", 200),
        ("GET", 200),
    ]
    gateway.revoke()
    assert gateway.registration() is None

    guide = client_for(served, "messages")
    guide.register("https://hooks.example.com/webhook/c")  # a new one replaces the old
    on_file = guide.registration()
    assert on_file is not None
    assert on_file.url == "https://hooks.example.com/webhook/c"
    with pytest.raises(ValueError, match="HTTPS"):
        guide.register("http://hooks.example.com/webhook/c")


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    wait_for(condition, timeout=timeout, what="the breaker to change state", interval=0.01)
