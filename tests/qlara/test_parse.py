"""Reading every documented payload shape into DeliveryEvent / InboundMessage."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from qlara import DeliveryEvent, InboundMessage, InvalidPayload, Shape, parse_body

GUIDE = {
    "messageId": "msg_1234567890",
    "customerMessageId": "your_reference_id",
    "phoneNumber": "+393901234567",
    "status": "DELIVERED",
    "timestamp": "2025-04-08T14:30:00Z",
    "channel": "sms",
    "error": None,
}
PLATFORM = {
    "eventType": "DELIVERY",
    "messageId": "5f0c-uuid",
    "customerMessageId": "order-12345",
    "destination": "+393901234567",
    "statusCode": 3,
    "description": "Message delivered",
    "channel": "SMS",
    "timestamp": "2025-04-08T14:30:00.250Z",
}
UNIVERSAL = {
    "channel": "SMS",
    "eventType": "DELIVERY",
    "messageId": "9a1b-uuid",
    "statusCode": 3,
    "statusDescription": "Delivered",
    "price": 0.035,
    "numPart": 2,
    "totalParts": 3,
    "timestamp": "2025-04-08T14:30:00Z",
}


def one(payload: object) -> DeliveryEvent | InboundMessage:
    parsed = parse_body(json.dumps(payload).encode())
    items = [*parsed.events, *parsed.inbound]
    assert len(items) == 1
    assert not parsed.rejected
    return items[0]


def test_the_guide_shape_is_read_with_every_field() -> None:
    ev = one(GUIDE)
    assert isinstance(ev, DeliveryEvent)
    assert ev.shape is Shape.GUIDE
    assert (ev.message_id, ev.customer_message_id, ev.phone) == (
        "msg_1234567890",
        "your_reference_id",
        "+393901234567",
    )
    assert (ev.status, ev.channel, ev.error) == ("delivered", "sms", None)
    assert ev.event_time == datetime(2025, 4, 8, 14, 30, tzinfo=UTC)
    assert not ev.naive_time


def test_a_single_object_keeps_the_body_bytes_as_raw() -> None:
    body = json.dumps({**GUIDE, "brandNewField": {"x": 1}}).encode()
    ev = parse_body(body).events[0]
    assert ev.raw == body


def test_the_platform_shape_maps_status_code_3_to_delivered_and_upper_case_channels() -> None:
    ev = one(PLATFORM)
    assert isinstance(ev, DeliveryEvent)
    assert (ev.shape, ev.status, ev.status_code, ev.channel) == (
        Shape.PLATFORM,
        "delivered",
        3,
        "sms",
    )
    assert ev.phone == "+393901234567"
    assert ev.error is None


def test_status_code_6_is_an_error_with_the_description_as_error_text() -> None:
    ev = one({**PLATFORM, "statusCode": 6, "description": "Number not reachable"})
    assert isinstance(ev, DeliveryEvent)
    assert (ev.status, ev.error) == ("error", "Number not reachable")


def test_an_undocumented_status_code_is_kept_as_given() -> None:
    ev = one({**PLATFORM, "statusCode": 42})
    assert isinstance(ev, DeliveryEvent)
    assert (ev.status, ev.status_code) == ("42", 42)


def test_a_read_receipt_is_a_read_event() -> None:
    ev = one(
        {
            "eventType": "READ",
            "messageId": "w1",
            "destination": "+39 333 1234567",
            "channel": "WHATSAPP",
            "timestamp": "2025-04-08T14:31:00Z",
        }
    )
    assert isinstance(ev, DeliveryEvent)
    assert (ev.status, ev.channel, ev.phone) == ("read", "whatsapp", "+393331234567")


def test_an_inbound_reply_is_not_a_status_event() -> None:
    item = {
        "eventType": "INBOUND",
        "source": "+393331234567",
        "destination": "+390212345",
        "text": "STOP",
        "channel": "WHATSAPP",
        "messageType": "TEXT",
        "timestamp": "2025-04-08T14:32:00Z",
    }
    ev = one(item)
    assert isinstance(ev, InboundMessage)
    assert (ev.text, ev.channel, ev.message_type) == ("STOP", "whatsapp", "TEXT")
    assert ev.inbound_id.startswith("sha256:")
    assert one(item) == ev, "the same reply gets the same id, so a resend is recognised"


def test_the_universal_shape_carries_parts_and_price() -> None:
    ev = one(UNIVERSAL)
    assert isinstance(ev, DeliveryEvent)
    assert (ev.shape, ev.part, ev.total_parts, ev.price) == (Shape.UNIVERSAL, 2, 3, 0.035)


@pytest.mark.parametrize(
    ("status", "expected"),
    [("Delivered", "delivered"), ("sent", "sent"), ("RECEIVED", "received"), ("QUEUED", "queued")],
)
def test_statuses_are_case_insensitive_and_unknown_ones_are_kept(
    status: str, expected: str
) -> None:
    ev = one({**GUIDE, "status": status})
    assert isinstance(ev, DeliveryEvent)
    assert ev.status == expected


def test_an_unknown_channel_is_kept_lower_cased() -> None:
    ev = one({**GUIDE, "channel": "Telegram"})
    assert isinstance(ev, DeliveryEvent)
    assert ev.channel == "telegram"


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2025-04-08T14:30:00Z", datetime(2025, 4, 8, 14, 30, tzinfo=UTC)),
        ("2025-04-08T16:30:00+02:00", datetime(2025, 4, 8, 14, 30, tzinfo=UTC)),
        ("2025-04-08T14:30:00.123456Z", datetime(2025, 4, 8, 14, 30, 0, 123456, tzinfo=UTC)),
        ("2025-04-08T14:30:00.5-01:00", datetime(2025, 4, 8, 15, 30, 0, 500000, tzinfo=UTC)),
    ],
)
def test_iso_timestamps_with_zulu_offsets_and_fractions_become_utc(
    stamp: str, expected: datetime
) -> None:
    ev = one({**GUIDE, "timestamp": stamp})
    assert isinstance(ev, DeliveryEvent)
    assert ev.event_time == expected
    assert not ev.naive_time


def test_a_naive_timestamp_is_read_as_utc_and_flagged() -> None:
    ev = one({**GUIDE, "timestamp": "2025-04-08T14:30:00"})
    assert isinstance(ev, DeliveryEvent)
    assert ev.event_time == datetime(2025, 4, 8, 14, 30, tzinfo=UTC)
    assert ev.naive_time


def test_an_array_accepts_the_valid_items_and_answers_each_invalid_one() -> None:
    body = json.dumps([GUIDE, {"status": "SENT"}, 7, PLATFORM]).encode()
    parsed = parse_body(body)
    assert [e.message_id for e in parsed.events] == ["msg_1234567890", "5f0c-uuid"]
    assert [(r.index, r.field) for r in parsed.rejected] == [(1, "messageId"), (2, None)]
    assert parsed.is_array


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (b"", None, "empty body"),
        (b"   \n", None, "empty body"),
        (b"{not json", None, "malformed JSON"),
        (b'{"a": NaN}', None, "NaN"),
        (b'{"price": Infinity}', None, "NaN and Infinity"),
        (b'{"price": 1e999}', None, "number"),
        (b'"a string"', None, "got string"),
        (b"42", None, "got number"),
        (b"[]", None, "empty array"),
        (b'{"status": "SENT", "timestamp": "2025-04-08T14:30:00Z"}', "messageId", "missing"),
        (b'{"messageId": 12, "status": "SENT"}', "messageId", "must be a string"),
        (b'{"messageId": "m", "status": 3, "timestamp": "x"}', "status", "must be a string"),
        (b'{"messageId": "m", "status": "SENT"}', "timestamp", "missing"),
        (
            b'{"messageId": "m", "status": "SENT", "timestamp": "yesterday"}',
            "timestamp",
            "ISO 8601",
        ),
        (
            b'{"messageId": "m", "eventType": "DELIVERY", "statusCode": "3", "timestamp": 1}',
            "statusCode",
            "integer",
        ),
        (
            b'{"messageId": "m", "eventType": "DELIVERY", "statusCode": 3, "price": "1",'
            b' "timestamp": "2025-04-08T14:30:00Z"}',
            "price",
            "number",
        ),
        (
            b'{"messageId": "m", "eventType": "DELIVERY", "statusCode": 3, "numPart": 0,'
            b' "timestamp": "2025-04-08T14:30:00Z"}',
            "numPart",
            "1 or more",
        ),
    ],
)
def test_bad_input_names_the_problem_and_the_field(
    body: bytes, field: str | None, words: str
) -> None:
    with pytest.raises(InvalidPayload) as info:
        parse_body(body)
    assert info.value.field == field
    assert words in info.value.problem


def test_a_problem_never_echoes_the_value() -> None:
    secret = "+393901234567-do-not-echo"
    with pytest.raises(InvalidPayload) as info:
        parse_body(json.dumps({**GUIDE, "timestamp": secret}).encode())
    assert secret not in info.value.problem


def test_a_nul_character_in_any_text_becomes_a_replacement_character_and_raw_keeps_it() -> None:
    body = (
        b'[{"messageId":"m\\u0000-1","status":"ERROR","timestamp":"2025-04-08T14:30:00Z",'
        b'"channel":"sms","error":"bad\\u0000thing","x\\u0000":"y"}]'
    )
    [event] = parse_body(body).events
    assert isinstance(event, DeliveryEvent)
    assert event.message_id == "m\ufffd-1"
    assert event.error == "bad\ufffdthing"
    assert b"\\u0000" in event.raw  # the original, NULs included
