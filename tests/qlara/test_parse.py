"""Reading every documented payload shape into DeliveryEvent / InboundMessage."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


GOOD = json.dumps(GUIDE).encode()
DEEP_ARRAYS = b"[" * 1500 + b"]" * 1500


@pytest.mark.parametrize(
    "body",
    [
        b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
        GOOD[:-1] + b',"x":' + DEEP_ARRAYS + b"}",
    ],
)
def test_a_body_nested_too_deeply_is_an_invalid_payload(body: bytes) -> None:
    with pytest.raises(InvalidPayload) as info:
        parse_body(body)
    assert info.value.field is None
    assert "nested too deeply" in info.value.problem


RECEIVED = datetime(2025, 4, 8, 14, 30, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("timestamp", "words"),
    [
        (None, "missing"),
        ("9999-12-31T23:59:59-01:00", "no time UTC can hold"),
        ("0001-01-01T00:00:00+01:00", "no time UTC can hold"),
        (10**400, "no time UTC can hold"),
        (-5, "more than ten years"),
        ("1975-04-08T14:30:00Z", "more than ten years"),
        ("2099-04-08T14:30:00Z", "more than ten years"),
    ],
)
def test_an_event_without_a_plausible_time_is_kept_timed_at_its_receipt_and_noted(
    timestamp: object, words: str
) -> None:
    item = {k: v for k, v in GUIDE.items() if k != "timestamp"}
    if timestamp is not None:
        item["timestamp"] = timestamp
    body = json.dumps([PLATFORM, item]).encode()

    parsed = parse_body(body, received_at=RECEIVED.timestamp())

    assert parsed.rejected == []
    kept = parsed.events[1]
    assert (kept.message_id, kept.status) == ("msg_1234567890", "delivered")
    assert (kept.event_time, kept.time_from_receipt, kept.naive_time) == (RECEIVED, True, False)
    assert kept.raw == msgspec.json.encode(item)  # what was sent, its timestamp included
    [note] = parsed.notes
    assert (note.index, note.field) == (1, "timestamp")
    assert words in note.problem
    assert not parsed.events[0].time_from_receipt


def test_a_time_nine_years_away_is_still_believed() -> None:
    body = json.dumps({**GUIDE, "timestamp": "2016-06-01T00:00:00Z"}).encode()

    parsed = parse_body(body, received_at=RECEIVED.timestamp())

    assert parsed.events[0].event_time == datetime(2016, 6, 1, tzinfo=UTC)
    assert parsed.notes == []


@pytest.mark.parametrize(
    ("part", "total", "field"), [(0, 2, "numPart"), (-3, 1, "numPart"), (5, 2, "totalParts")]
)
def test_an_implausible_part_number_is_kept_as_sent_and_noted(
    part: int, total: int, field: str
) -> None:
    parsed = parse_body(json.dumps({**UNIVERSAL, "numPart": part, "totalParts": total}).encode())

    [event] = parsed.events
    assert (event.part, event.total_parts) == (part, total)
    [note] = parsed.notes
    assert (note.index, note.field) == (None, field)


def test_an_item_nested_too_deeply_costs_only_itself() -> None:
    second = json.dumps({**GUIDE, "messageId": "m-2"}).encode()
    deep = GOOD[:-1] + b',"x":' + DEEP_ARRAYS + b"}"
    tricky = b'"a string, with [brackets] and \\" {quotes"'
    body = b"[" + GOOD + b", " + deep + b"," + tricky + b",\n" + second + b"]"

    parsed = parse_body(body)

    assert [e.message_id for e in parsed.events] == ["msg_1234567890", "m-2"]
    assert [(r.index, r.field) for r in parsed.rejected] == [(1, None), (2, None)]
    assert "nested too deeply" in parsed.rejected[0].problem
    assert "got string" in parsed.rejected[1].problem
    assert parsed.events[1].raw == _encode_like_an_item(second)


def _encode_like_an_item(item: bytes) -> bytes:

    return msgspec.json.encode(msgspec.json.decode(item))


def test_an_array_nested_too_deeply_in_every_item_reads_nothing() -> None:
    parsed = parse_body(DEEP_ARRAYS)
    assert parsed.accepted == 0
    assert [r.index for r in parsed.rejected] == [0]


def test_bytes_that_are_not_utf8_inside_a_string_become_replacement_characters() -> None:
    body = GOOD.replace(b'"your_reference_id"', b'"caf\xe9 \xff"')

    [event] = parse_body(body).events

    assert event.customer_message_id == "caf\ufffd \ufffd"
    assert event.raw == body  # the bytes as sent


def test_a_utf8_byte_order_mark_before_the_body_is_skipped() -> None:
    [event] = parse_body(b"\xef\xbb\xbf" + GOOD).events
    assert event.message_id == "msg_1234567890"
    assert event.raw == GOOD


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**400)
    | st.floats()
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["messageId", "status", "timestamp", "eventType", "statusCode", "x"]),
            children,
            max_size=6,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    item=st.fixed_dictionaries(
        {"messageId": st.text(max_size=5), "status": st.text(max_size=5)},
        optional={
            "timestamp": st.one_of(
                st.text(max_size=30),
                st.integers(min_value=-(10**400), max_value=10**400),
                st.floats(),
                st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
            ),
            "eventType": st.sampled_from(["DELIVERY", "READ", "INBOUND", "X"]),
            "statusCode": json_values,
            "numPart": json_values,
            "totalParts": json_values,
            "price": json_values,
            "channel": json_values,
            "extra": json_values,
        },
    ),
    noise=st.binary(max_size=8),
    as_array=st.booleans(),
)
def test_any_body_is_read_or_refused_as_an_invalid_payload_never_an_exception(
    item: dict[str, object], noise: bytes, as_array: bool
) -> None:
    encoded = json.dumps([item] if as_array else item).encode()
    for body in (encoded, noise + encoded, encoded[: len(encoded) // 2] + noise):
        with contextlib.suppress(InvalidPayload):
            parse_body(body)


def test_a_price_beyond_any_float_is_kept_in_the_raw_payload_and_noted() -> None:
    body = json.dumps([{**UNIVERSAL, "price": 10**400}, PLATFORM]).encode()

    parsed = parse_body(body)

    assert [e.price for e in parsed.events] == [None, None]
    assert parsed.rejected == []
    [note] = parsed.notes
    assert (note.index, note.field) == (0, "price")
    assert b"1" + b"0" * 400 in parsed.events[0].raw


def test_a_part_count_no_sms_can_have_is_kept_and_noted() -> None:
    from qlara import parse_body

    body = (
        b'{"eventType":"DELIVERY","messageId":"m","statusCode":3,"numPart":1,'
        b'"totalParts":2147483647,"timestamp":"2025-03-01T10:00:00Z"}'
    )
    parsed = parse_body(body)
    [event] = parsed.events
    assert event.total_parts == 2**31 - 1
    assert [(n.field, n.problem[:30]) for n in parsed.notes] == [
        ("totalParts", "`totalParts` is above 255, mor")
    ]
