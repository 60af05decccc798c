"""The receiver and the workers speak one wire format (:mod:`qlara.wire`): what the receiver
puts in a message is what the workers' actor reads, through Dramatiq's own encoding."""

from __future__ import annotations

import dramatiq
from hypothesis import given
from hypothesis import strategies as st

from qlara import Receipt
from qlara.wire import ACTOR_NAME, QUEUE_NAME
from receiver.enqueue import Envelope, build_batch_message, build_message
from tests.qlara.test_wire import R1, R1_ARGUMENT, R2, R2_ARGUMENT, receipts
from workers.broker import receipt_message
from workers.recorder import decode_receipts


def read_by_worker(data: bytes) -> list[Receipt]:
    """What the actor records of a message's bytes as they sit in Redis."""
    message = dramatiq.Message.decode(data)
    assert (message.queue_name, message.actor_name) == (QUEUE_NAME, ACTOR_NAME)
    [argument] = message.args
    return decode_receipts(argument)


def test_the_receivers_batch_message_is_read_by_the_worker() -> None:
    message = build_batch_message(
        [R1.encode(), R2.encode()], queue_name=QUEUE_NAME, actor_name=ACTOR_NAME
    )
    assert message.args == (f"[{R1_ARGUMENT},{R2_ARGUMENT}]",)
    assert read_by_worker(Envelope.of(message).data) == [R1, R2]


def test_the_receivers_spooled_message_is_read_by_the_worker() -> None:
    message = build_message(R1, queue_name=QUEUE_NAME, actor_name=ACTOR_NAME)
    assert message.args == (R1_ARGUMENT,)
    assert read_by_worker(Envelope.of(message).data) == [R1]


def test_a_redriven_message_is_read_by_the_worker() -> None:
    assert read_by_worker(receipt_message(R2_ARGUMENT).encode()) == [R2]


@given(st.lists(receipts, min_size=1, max_size=4))
def test_any_batch_the_receiver_sends_is_read_back_as_itself(batch: list[Receipt]) -> None:
    message = build_batch_message(
        [r.encode() for r in batch], queue_name=QUEUE_NAME, actor_name=ACTOR_NAME
    )
    assert read_by_worker(Envelope.of(message).data) == batch
