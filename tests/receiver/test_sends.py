"""``POST /v1/sends``: the application reports what it sent, under the webhook's promises.

Its own bearer token (never the webhook's or the read API's), 200 only once durable (queue
or spool), a 4xx naming the problem for bad input, never a 500.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

import metrics
from qlara import Shape, Source, placeholder_id
from receiver import ReceiverConfig
from tests.receiver.conftest import (
    READ_TOKEN,
    SEND_TOKEN,
    TOKEN,
    QueueReader,
    closed_redis_url,
    spool_lines,
    wait_for,
)

URL = "/v1/sends"
AUTH = {"Authorization": f"Bearer {SEND_TOKEN}"}


def _sends_counted(outcome: str) -> float:
    return metrics.SENDS_REQUESTS.labels(outcome)._value.get()  # type: ignore[attr-defined,no-any-return]


def test_a_send_is_queued_as_a_sent_event_from_the_application(
    client: TestClient[Any], queue: QueueReader
) -> None:
    body = {
        "messageId": "m-1",
        "customerMessageId": "order-1",
        "channel": "SMS",
        "phoneNumber": "+39 390 1234567",
        "sentAt": "2026-12-05T10:00:00Z",
        "campaign": "spring",  # unknown fields are kept in raw
    }
    response = client.post(URL, content=json.dumps(body), headers=AUTH)

    assert (response.status_code, response.json()) == (200, {"status": "received"})
    [receipt] = queue.receipts()
    [ev] = receipt.events
    assert (ev.message_id, ev.status, ev.source, ev.shape) == ("m-1", "sent", Source.APP, Shape.APP)
    assert (ev.customer_message_id, ev.channel, ev.phone) == ("order-1", "sms", "+393901234567")
    assert ev.event_time.isoformat() == "2026-12-05T10:00:00+00:00"
    assert json.loads(ev.raw)["campaign"] == "spring"
    assert client.app.state.runtime.send_outcomes["accepted"] == 1
    assert client.app.state.outcomes["accepted"] == 0  # the webhook's count is its own


def test_an_array_of_sends_reports_each_item(client: TestClient[Any], queue: QueueReader) -> None:
    body = [
        {"customerMessageId": "order-2", "channel": "whatsapp"},
        {"channel": "sms"},
        {"messageId": "m-3", "channel": "rcs", "sentAt": 1764928800},
    ]
    response = client.post(URL, content=json.dumps(body), headers=AUTH)

    assert response.status_code == 200
    assert response.json() == {
        "status": "received",
        "accepted": 2,
        "rejected": [
            {
                "index": 1,
                "error": "a send needs `messageId` or `customerMessageId` (or both)",
                "field": "messageId",
            }
        ],
    }
    [receipt] = queue.receipts()
    first, third = receipt.events
    assert first.message_id == placeholder_id("order-2")
    assert first.time_from_receipt  # no sentAt: timed at its receipt
    assert (third.message_id, third.event_time.isoformat()) == ("m-3", "2025-12-05T10:00:00+00:00")


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({}, "no credentials"),
        ({"Authorization": f"Bearer {TOKEN}"}, "the webhook token"),
        ({"Authorization": f"Bearer {READ_TOKEN}"}, "the read token"),
        ({"X-Webhook-Token": TOKEN}, "the webhook token's header"),
        ({"Authorization": f"Basic {SEND_TOKEN}"}, "another scheme"),
        ({"Authorization": f"Bearer {SEND_TOKEN}x"}, "a longer token"),
    ],
)
def test_only_the_send_token_is_let_in(
    client: TestClient[Any], queue: QueueReader, headers: dict[str, str], why: str
) -> None:
    response = client.post(URL, content=b'{"messageId":"m-1","channel":"sms"}', headers=headers)

    assert response.status_code == 401, why
    assert response.json()["status"] == "unauthorized"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert len(queue) == 0


def test_the_webhook_token_path_is_not_a_way_in(client: TestClient[Any]) -> None:
    assert client.post(f"{URL}/{SEND_TOKEN}", content=b"{}", headers=AUTH).status_code == 404


def test_without_a_send_token_configured_every_send_is_refused(
    config: ReceiverConfig, make_client: Any
) -> None:
    client = make_client(config, send_token=None)
    response = client.post(URL, content=b'{"messageId":"m-1","channel":"sms"}', headers=AUTH)
    assert response.status_code == 401


def test_repeated_failures_are_throttled(client: TestClient[Any]) -> None:
    wrong = {"Authorization": "Bearer wrong-token-wrong-token"}
    codes = [client.post(URL, content=b"{}", headers=wrong).status_code for _ in range(25)]
    assert codes[:20] == [401] * 20
    assert codes[-1] == 429
    # The right token is never limited
    right = client.post(URL, content=b'{"messageId":"m-1","channel":"sms"}', headers=AUTH)
    assert right.status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"", 400, "empty body"),
        (b"{", 400, "malformed JSON"),
        (b'{"channel":"sms"}', 400, "a send needs `messageId` or `customerMessageId`"),
        (b'{"messageId":"m-1"}', 400, "missing field `channel`"),
        (b'{"messageId":7,"channel":"sms"}', 400, "`messageId` must be a string"),
        (b'{"messageId":"m","channel":"sms","sentAt":"yesterday"}', 400, "`sentAt` is not an"),
        (b'{"a":' * 2000 + b"1" + b"}" * 2000, 400, "nested too deeply"),
        (b'{"messageId":"m","channel":"sms","phoneNumber":"\xff\xfe"}', 200, None),
    ],
)
def test_bad_input_is_a_4xx_naming_the_problem(
    client: TestClient[Any], body: bytes, status: int, error: str | None
) -> None:
    response = client.post(URL, content=body, headers=AUTH)
    assert response.status_code == status
    if error is not None:
        assert error in response.json()["error"]


def test_method_type_and_size_are_checked_after_the_token(
    config: ReceiverConfig, make_client: Any
) -> None:
    client = make_client(config, max_body_bytes=64)
    assert client.get(URL, headers=AUTH).status_code == 405
    assert client.get(URL).status_code == 401  # no token: nothing else is said
    typed = client.post(URL, content=b"x", headers={**AUTH, "Content-Type": "text/plain"})
    assert typed.status_code == 415
    big = client.post(URL, content=b'{"messageId":"' + b"m" * 100 + b'"}', headers=AUTH)
    assert big.status_code == 413


def test_with_redis_down_a_send_is_spooled_and_reaches_the_queue_later(
    config: ReceiverConfig, make_client: Any, queue: QueueReader
) -> None:
    down = make_client(config, redis_url=closed_redis_url())
    response = down.post(URL, content=b'{"messageId":"m-9","channel":"sms"}', headers=AUTH)
    assert response.status_code == 200
    assert down.app.state.runtime.send_outcomes["spooled"] == 1
    assert len(spool_lines(config)) == 1

    # A receiver that reaches Redis drains the shared spool into the queue
    make_client(config)
    wait_for(lambda: len(queue) == 1, what="the spooled send in the queue")
    [receipt] = queue.receipts()
    assert [(e.message_id, e.source) for e in receipt.events] == [("m-9", Source.APP)]


def test_with_redis_down_and_the_spool_unwritable_the_answer_is_a_503(
    config: ReceiverConfig, make_client: Any
) -> None:
    config.data_dir.mkdir(parents=True)
    config.spool_dir.write_bytes(b"not a directory")
    client = make_client(config, redis_url=closed_redis_url())
    response = client.post(URL, content=b'{"messageId":"m-1","channel":"sms"}', headers=AUTH)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"


def test_requests_are_counted_by_outcome(client: TestClient[Any]) -> None:
    before = {o: _sends_counted(o) for o in ("accepted", "invalid", "unauthorized")}
    client.post(URL, content=b'{"messageId":"m-1","channel":"sms"}', headers=AUTH)
    client.post(URL, content=b"{}", headers=AUTH)
    client.post(URL, content=b"{}")
    after = {o: _sends_counted(o) for o in before}
    assert {o: after[o] - before[o] for o in before} == {
        "accepted": 1,
        "invalid": 1,
        "unauthorized": 1,
    }


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=20,
)
_send_like = st.fixed_dictionaries(
    {},
    optional={
        "messageId": _json | st.text(max_size=30),
        "customerMessageId": _json | st.text(max_size=30),
        "channel": _json | st.sampled_from(["sms", "RCS", "WhatsApp", ""]),
        "phoneNumber": _json | st.text(max_size=20),
        "sentAt": _json | st.sampled_from(["2026-12-05T10:00:00Z", "9999-12-31T23:59:59-01:00"]),
    },
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=st.one_of(_send_like, st.lists(_send_like, max_size=4), _json))
def test_no_body_is_a_500(client: TestClient[Any], body: Any) -> None:
    try:
        content = json.dumps(body).encode()
    except ValueError:  # NaN and the like: sent as Python writes them
        content = repr(body).encode()
    response = client.post(URL, content=content, headers=AUTH)
    assert response.status_code in (200, 400), response.text
