"""The receipts' wire format: what is encoded reads back as the same receipts, and the bytes
are those the receiver has always sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from qlara import DeliveryEvent, InboundMessage, Receipt, Shape, Source
from qlara.wire import ACTOR_NAME, QUEUE_NAME, decode_argument, encode_argument, join_argument

R1 = Receipt(
    receipt_id="r-1",
    received_at=1740823200.25,
    events=(
        DeliveryEvent(
            message_id="m-1",
            status="delivered",
            event_time=datetime(2025, 3, 1, 10, 0, tzinfo=UTC),
            shape=Shape.GUIDE,
            raw=b'{"messageId":"m-1"}',
            channel="sms",
            phone="+393901234567",
        ),
    ),
)
R2 = Receipt(
    receipt_id="r-2",
    received_at=1740823201.5,
    inbound=(
        InboundMessage(
            inbound_id="i-1",
            event_time=datetime(2025, 3, 1, 10, 0, 5, tzinfo=UTC),
            raw=b'{"text":"hi"}',
            channel="sms",
            text="hi",
        ),
    ),
)
#: R1's and R2's arguments, byte for byte as the receiver and the workers wrote them before
#: the format had a module of its own: messages in a queue across an upgrade look like this.
R1_ARGUMENT = (
    '{"receipt_id":"r-1","received_at":1740823200.25,"events":[{"message_id":"m-1",'
    '"status":"delivered","event_time":"2025-03-01T10:00:00Z","shape":"A",'
    '"raw":"eyJtZXNzYWdlSWQiOiJtLTEifQ==","channel":"sms","customer_message_id":null,'
    '"phone":"+393901234567","error":null,"status_code":null,"part":1,"total_parts":1,'
    '"price":null,"naive_time":false,"time_from_receipt":false,"source":"webhook"}],'
    '"inbound":[]}'
)
R2_ARGUMENT = (
    '{"receipt_id":"r-2","received_at":1740823201.5,"events":[],"inbound":[{"inbound_id":'
    '"i-1","event_time":"2025-03-01T10:00:05Z","raw":"eyJ0ZXh0IjoiaGkifQ==","channel":"sms",'
    '"source":null,"destination":null,"text":"hi","message_type":null,"naive_time":false,'
    '"time_from_receipt":false}]}'
)

texts = st.text(max_size=20)
maybe_texts = st.none() | texts
times = st.datetimes(
    min_value=datetime(1970, 1, 2),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=2))]) | st.none(),
)
events = st.builds(
    DeliveryEvent,
    message_id=texts,
    status=texts,
    event_time=times,
    shape=st.sampled_from(Shape),
    raw=st.binary(max_size=40),
    channel=maybe_texts,
    customer_message_id=maybe_texts,
    phone=maybe_texts,
    error=maybe_texts,
    status_code=st.none() | st.integers(-(2**63), 2**63 - 1),
    part=st.integers(1, 10),
    total_parts=st.integers(1, 10),
    price=st.none() | st.floats(allow_nan=False, allow_infinity=False),
    naive_time=st.booleans(),
    time_from_receipt=st.booleans(),
    source=st.sampled_from(Source),
)
inbound = st.builds(
    InboundMessage,
    inbound_id=texts,
    event_time=times,
    raw=st.binary(max_size=40),
    channel=maybe_texts,
    source=maybe_texts,
    destination=maybe_texts,
    text=maybe_texts,
    message_type=maybe_texts,
    naive_time=st.booleans(),
    time_from_receipt=st.booleans(),
)
receipts = st.builds(
    Receipt,
    receipt_id=texts,
    received_at=st.floats(min_value=0, max_value=2**33, allow_nan=False),
    events=st.lists(events, max_size=3).map(tuple),
    inbound=st.lists(inbound, max_size=2).map(tuple),
)


def test_the_queue_and_the_actor_keep_their_names() -> None:
    # Renaming either strands every message already queued under the old name.
    assert (QUEUE_NAME, ACTOR_NAME) == ("qlara-events", "record_receipt")


def test_one_receipt_is_its_json_object() -> None:
    assert encode_argument([R1]) == R1_ARGUMENT
    assert decode_argument(R1_ARGUMENT) == [R1]


def test_several_receipts_are_the_json_array_of_their_objects() -> None:
    assert encode_argument([R1, R2]) == f"[{R1_ARGUMENT},{R2_ARGUMENT}]"
    assert decode_argument(f"[{R1_ARGUMENT},{R2_ARGUMENT}]") == [R1, R2]


def test_the_receivers_joined_bytes_are_the_same_array() -> None:
    assert join_argument([R1.encode(), R2.encode()]) == encode_argument([R1, R2])
    assert join_argument([R1.encode()]) == f"[{R1_ARGUMENT}]"
    assert decode_argument(join_argument([R1.encode()])) == [R1]


def test_the_argument_is_read_from_bytes_too() -> None:
    assert decode_argument(R1_ARGUMENT.encode()) == [R1]


@pytest.mark.parametrize(
    "argument", ["", "{not json", "[1]", '{"receipt_id": 5}', "null", '[{"receipt_id":"r"}]']
)
def test_anything_else_is_a_decode_error(argument: str) -> None:
    with pytest.raises(msgspec.DecodeError):
        decode_argument(argument)


@given(st.lists(receipts, min_size=1, max_size=4))
def test_encoded_receipts_read_back_as_themselves(batch: list[Receipt]) -> None:
    assert decode_argument(encode_argument(batch)) == batch
    joined = join_argument([receipt.encode() for receipt in batch])
    assert decode_argument(joined) == batch
    if len(batch) > 1:
        assert joined == encode_argument(batch)
