"""The webhook intake: what is accepted, what is refused with which code, and where each
ends up (queue, spool, reject log)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from qlara import Receipt
from receiver import ReceiverConfig, create_app
from tests.receiver.conftest import (
    ACTOR,
    QUEUE,
    TOKEN,
    QueueReader,
    event_json,
    reject_records,
    spool_lines,
)

pytestmark = pytest.mark.redis

URL = f"/webhook/{TOKEN}"


def post(client: TestClient[Any], body: Any, **kwargs: Any) -> Any:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(URL, content=content, **kwargs)


def test_a_single_event_is_answered_received_and_queued_as_a_dramatiq_message(
    client: TestClient[Any], queue: QueueReader
) -> None:
    response = post(client, event_json("m-1"), headers={"content-type": "application/json"})

    assert response.status_code == 200
    assert response.content == b'{"status":"received"}'
    [message] = queue.messages()
    assert (message.queue_name, message.actor_name, message.kwargs) == (QUEUE, ACTOR, {})
    # The argument is a batch: the receipts of the requests that waited for the same flush.
    [receipt] = msgspec.json.decode(message.args[0], type=list[Receipt])
    assert [event.message_id for event in receipt.events] == ["m-1"]
    assert receipt.events[0].status == "delivered"
    assert client.app.state.outcomes["accepted"] == 1


def test_an_array_accepts_its_valid_items_and_lists_the_invalid_ones(
    client: TestClient[Any], queue: QueueReader, config: ReceiverConfig
) -> None:
    body = [event_json("m-1"), {"messageId": "m-2"}, 7, event_json("m-3", "SENT")]

    response = post(client, body)

    assert response.status_code == 200
    assert response.json() == {
        "status": "received",
        "accepted": 2,
        "rejected": [
            {"index": 1, "error": "missing field `status`", "field": "status"},
            {"index": 2, "error": "expected a JSON object, got number", "field": None},
        ],
    }
    [receipt] = queue.receipts()
    assert [e.message_id for e in receipt.events] == ["m-1", "m-3"]
    [record] = reject_records(config)
    assert record["status"] == 200
    assert [item["index"] for item in record["rejected"]] == [1, 2]


def test_an_array_of_only_invalid_items_is_refused_with_the_same_list(
    client: TestClient[Any], queue: QueueReader, config: ReceiverConfig
) -> None:
    response = post(client, [{"messageId": "m-1"}, "x"])

    assert response.status_code == 400
    assert response.json()["status"] == "rejected"
    assert response.json()["accepted"] == 0
    assert [item["index"] for item in response.json()["rejected"]] == [0, 1]
    assert len(queue) == 0
    assert reject_records(config)[0]["status"] == 400


def test_an_inbound_reply_is_accepted_alongside_status_events(
    client: TestClient[Any], queue: QueueReader
) -> None:
    inbound = {
        "eventType": "INBOUND",
        "source": "+393901234567",
        "destination": "+393331234567",
        "text": "STOP",
        "channel": "WHATSAPP",
        "timestamp": "2025-03-01T10:00:00Z",
    }

    response = post(client, [inbound, event_json()])

    assert response.json() == {"status": "received", "accepted": 2, "rejected": []}
    [receipt] = queue.receipts()
    assert (len(receipt.events), len(receipt.inbound)) == (1, 1)


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "APPLICATION/JSON",
        "application/vnd.qlara+json",
        "application/problem+json; charset=UTF-8",
    ],
)
def test_json_content_types_with_any_parameters_are_accepted(
    client: TestClient[Any], content_type: str
) -> None:
    response = post(client, event_json(), headers={"content-type": content_type})

    assert response.status_code == 200


def test_a_missing_content_type_is_read_as_json(
    client: TestClient[Any], queue: QueueReader
) -> None:
    # httpx sends no Content-Type for raw bytes content.
    response = client.post(URL, content=json.dumps(event_json()).encode())

    assert "content-type" not in response.request.headers
    assert response.status_code == 200
    assert len(queue) == 1


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml", "json"]
)
def test_other_content_types_are_refused_with_415_and_logged(
    client: TestClient[Any], queue: QueueReader, config: ReceiverConfig, content_type: str
) -> None:
    response = post(client, event_json(), headers={"content-type": content_type})

    assert response.status_code == 415
    assert response.json()["status"] == "rejected"
    assert len(queue) == 0
    assert spool_lines(config) == []
    [record] = reject_records(config)
    assert (record["status"], record["encoding"]) == (415, "utf-8")
    assert json.loads(record["body"]) == event_json()


def test_a_declared_length_over_the_limit_is_refused_with_413_unread(
    config: ReceiverConfig, make_client: Any, queue: QueueReader
) -> None:
    client = make_client(config, max_body_bytes=100)

    response = post(client, event_json(text="x" * 200))

    assert response.status_code == 413
    assert len(queue) == 0
    [record] = reject_records(config)
    assert (record["status"], record["body"]) == (413, None)


def test_a_chunked_body_is_read_only_until_it_passes_the_limit(config: ReceiverConfig) -> None:
    # Given a body sent in 10 chunks of 40 bytes and a limit of 100 bytes
    app = create_app(replace(config, max_body_bytes=100))
    chunks = [b"x" * 40 for _ in range(10)]
    handed_out = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal handed_out
        handed_out += 1
        return {"type": "http.request", "body": chunks[handed_out - 1], "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    # When it is posted without a Content-Length
    scope = _http_scope("POST", URL, [(b"transfer-encoding", b"chunked")])
    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]

    # Then the answer is 413 after the third chunk, the rest never read
    assert sent[0]["status"] == 413
    assert handed_out == 3


def test_malformed_json_is_refused_with_the_problem_and_never_the_value(
    client: TestClient[Any], queue: QueueReader, config: ReceiverConfig
) -> None:
    response = post(client, b'{"messageId": "m-1", "status": "SENT", "timestamp": 12,')

    assert response.status_code == 400
    assert response.json() == {
        "status": "rejected",
        "error": "malformed JSON: input data was truncated",
        "field": None,
    }
    assert len(queue) == 0
    assert reject_records(config)[0]["status"] == 400


def test_an_invalid_single_event_names_the_field_without_echoing_it(
    client: TestClient[Any], queue: QueueReader
) -> None:
    response = post(client, event_json(timestamp="not-a-time-+393901234567"))

    assert response.status_code == 400
    assert response.json()["field"] == "timestamp"
    assert "+39390" not in response.text
    assert len(queue) == 0


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"{", {}, 400),
        (b"", {}, 400),
        (b"[]", {}, 400),
        (b'{"messageId": "m-1"}', {}, 400),
        (b'[{"messageId": "m-1"}]', {}, 400),
        (json.dumps(event_json()).encode(), {"content-type": "text/csv"}, 415),
        (json.dumps(event_json(pad="x" * 200)).encode(), {}, 413),
    ],
)
def test_a_bad_input_reaches_neither_queue_nor_spool_and_is_logged(
    config: ReceiverConfig,
    make_client: Any,
    queue: QueueReader,
    body: bytes,
    headers: dict[str, str],
    status: int,
) -> None:
    client = make_client(config, max_body_bytes=200)

    response = client.post(URL, content=body, headers=headers)

    assert response.status_code == status
    assert len(queue) == 0
    assert spool_lines(config) == []
    assert [record["status"] for record in reject_records(config)] == [status]


def test_a_binary_body_is_kept_in_the_reject_log_as_base64(
    client: TestClient[Any], config: ReceiverConfig
) -> None:
    response = post(client, b"\xff\xfe\x00garbage")

    assert response.status_code == 400
    [record] = reject_records(config)
    assert record["encoding"] == "base64"


def test_a_wrong_method_is_405_in_json_once_authenticated(client: TestClient[Any]) -> None:
    response = client.get(URL)

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["status"] == "rejected"


def test_a_wrong_method_with_a_wrong_token_is_401_not_405(client: TestClient[Any]) -> None:
    response = client.put("/webhook/wrong", content=b"{}")

    assert response.status_code == 401


def test_a_path_that_only_starts_like_the_webhook_is_not_found(client: TestClient[Any]) -> None:
    response = client.post(f"/webhook{TOKEN}", content=b"{}")

    assert response.status_code == 404
    assert response.json() == {"error": "not found"}


def test_a_websocket_handshake_on_the_webhook_is_refused(client: TestClient[Any]) -> None:
    from litestar.exceptions import WebSocketDisconnect

    with pytest.raises(WebSocketDisconnect), client.websocket_connect(URL) as socket:
        socket.receive_text()


def test_the_receipt_carries_the_raw_item_for_the_ledger(
    client: TestClient[Any], queue: QueueReader
) -> None:
    item = event_json(extra_field={"kept": True})

    post(client, item)

    [receipt] = queue.receipts()
    assert msgspec.json.decode(receipt.events[0].raw) == item


def test_each_request_gets_its_own_receipt_id(client: TestClient[Any], queue: QueueReader) -> None:
    for n in range(5):
        assert post(client, event_json(f"m-{n}")).status_code == 200

    receipts = queue.receipts()
    assert len({r.receipt_id for r in receipts}) == 5
    assert [r.events[0].message_id for r in receipts] == [f"m-{n}" for n in range(5)]


def _http_scope(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }


HOSTILE_BODIES = {
    "nested arrays": b"[" * 1500 + b"]" * 1500,
    "nested objects": b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
}


@pytest.mark.parametrize("name", list(HOSTILE_BODIES))
def test_a_body_that_cannot_be_read_is_a_counted_and_logged_400_not_a_500(
    client: TestClient[Any], queue: QueueReader, config: ReceiverConfig, name: str
) -> None:
    response = post(client, HOSTILE_BODIES[name])

    assert response.status_code == 400, response.text
    assert response.json()["status"] == "rejected"
    assert response.json()["error"]
    assert len(queue) == 0
    assert client.app.state.outcomes["invalid"] == 1
    assert [record["status"] for record in reject_records(config)] == [400]


def test_an_item_nested_too_deeply_is_refused_alone_and_the_rest_is_queued(
    client: TestClient[Any], queue: QueueReader
) -> None:
    good = json.dumps(event_json("m-1")).encode()
    deep = json.dumps(event_json("m-2")).encode()[:-1] + b',"x":' + HOSTILE_BODIES["nested arrays"]
    body = b"[" + good + b"," + deep + b"}," + json.dumps(event_json("m-3")).encode() + b"]"

    response = post(client, body)

    assert response.status_code == 200
    assert response.json()["accepted"] == 2
    assert [item["index"] for item in response.json()["rejected"]] == [1]
    [receipt] = queue.receipts()
    assert [e.message_id for e in receipt.events] == ["m-1", "m-3"]


def test_bytes_that_are_not_utf8_in_a_text_field_do_not_cost_the_event(
    client: TestClient[Any], queue: QueueReader
) -> None:
    body = json.dumps(event_json("m-1", "ERROR", error="ERRTEXT")).encode()

    response = post(client, body.replace(b"ERRTEXT", b"rifiutato \xe0 \xff"))

    assert response.status_code == 200
    [receipt] = queue.receipts()
    assert receipt.events[0].error == "rifiutato \ufffd \ufffd"


def test_a_body_with_a_byte_order_mark_is_accepted(
    client: TestClient[Any], queue: QueueReader
) -> None:
    response = post(client, b"\xef\xbb\xbf" + json.dumps(event_json("m-1")).encode())

    assert response.status_code == 200
    assert [e.message_id for e in queue.receipts()[0].events] == ["m-1"]


def test_a_parser_fault_is_a_400_that_keeps_the_body_in_the_reject_log(
    client: TestClient[Any], queue: QueueReader, config: ReceiverConfig, monkeypatch: Any
) -> None:
    # Whatever the parser did not foresee: Qlara would resend a 500 in vain, while the
    # reject log keeps the body for a replay once the parser is fixed.
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ArithmeticError("unforeseen")

    monkeypatch.setattr("qlara.parse.parse_item", broken)
    body = json.dumps(event_json("m-1")).encode()

    response = post(client, body)

    assert response.status_code == 400
    assert response.json()["error"] == "the payload could not be read"
    assert len(queue) == 0
    assert client.app.state.outcomes["invalid"] == 1
    [record] = reject_records(config)
    assert record["status"] == 400


@pytest.mark.parametrize(
    "timestamp", [None, "9999-12-31T23:59:59-01:00", 10**400, "1901-01-01T00:00:00Z"]
)
def test_an_event_without_a_plausible_time_is_queued_timed_at_its_receipt_and_noted(
    client: TestClient[Any], queue: QueueReader, config: ReceiverConfig, timestamp: object
) -> None:
    item = {k: v for k, v in event_json("m-1").items() if k != "timestamp"}
    if timestamp is not None:
        item["timestamp"] = timestamp

    response = post(client, [event_json("m-0"), item])

    assert response.status_code == 200
    assert response.json() == {"status": "received", "accepted": 2, "rejected": []}
    [receipt] = queue.receipts()
    kept = receipt.events[1]
    assert kept.time_from_receipt
    assert kept.event_time == datetime.fromtimestamp(receipt.received_at, UTC)
    assert not receipt.events[0].time_from_receipt
    [record] = reject_records(config)
    assert (record["status"], record["reason"]) == (200, "implausible values were kept")
    assert [(n["index"], n["field"]) for n in record["noted"]] == [(1, "timestamp")]
    assert "rejected" not in record
