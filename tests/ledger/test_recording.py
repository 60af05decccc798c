"""Recording receipts: deduplication, status rules, latency, inbound, multi-part."""

from __future__ import annotations

import itertools
from datetime import UTC, timedelta

import pytest

from ledger import LatencyObservation, Ledger
from qlara import DeliveryEvent, Receipt, Shape, parse_body
from tests.ledger.samples import PHONE, T0, event, receipt, reply


def test_a_first_event_creates_the_message_with_its_state(ledger: Ledger) -> None:
    result = ledger.record(receipt(event("m-1", "sent", 0, customer_message_id="order-1")))

    assert not result.already_recorded
    assert [e.status for e in result.new_events] == ["sent"]
    message = ledger.get_message("m-1")
    assert message is not None
    assert message.status == "sent"
    assert message.status_time == T0
    assert not message.is_final
    assert message.sent_at == T0
    assert message.channel == "sms"
    assert message.customer_message_id == "order-1"
    assert message.phone == PHONE
    assert message.event_count == 1
    assert message.duplicate_count == 0
    assert message.latency_seconds is None


def test_a_resent_event_only_raises_the_duplicate_count(ledger: Ledger) -> None:
    # Given a message that was sent and delivered
    ledger.record(receipt(event("m-1", "sent", 0)))
    ledger.record(receipt(event("m-1", "delivered", 4)))
    before = ledger.get_message("m-1")
    assert before is not None

    # When Qlara sends the sent event again, in a new request
    result = ledger.record(receipt(event("m-1", "sent", 0)))

    # Then only the duplicate counts moved
    assert result.new_events == []
    assert [e.status for e in result.duplicate_events] == ["sent"]
    after = ledger.get_message("m-1")
    assert after is not None
    assert after.duplicate_count == 1
    assert [(e.status, e.duplicates) for e in after.events] == [("sent", 1), ("delivered", 0)]
    assert after.status == before.status == "delivered"
    assert after.updated_at == before.updated_at
    assert after.event_count == before.event_count == 2
    assert result.latencies == []


def test_the_same_event_twice_in_one_receipt_is_stored_once(ledger: Ledger) -> None:
    result = ledger.record(receipt(event("m-1", "sent", 0), event("m-1", "sent", 0)))

    assert len(result.new_events) == 1
    assert len(result.duplicate_events) == 1
    message = ledger.get_message("m-1")
    assert message is not None
    assert (message.event_count, message.duplicate_count) == (1, 1)


def test_a_redelivered_receipt_changes_nothing(ledger: Ledger) -> None:
    # Given a receipt recorded once
    once = receipt(event("m-1", "sent", 0), event("m-1", "delivered", 3), inbound=(reply(),))
    ledger.record(once)
    counts = ledger.counts()
    message = ledger.get_message("m-1")

    # When the broker delivers it again (or the spool replays it)
    again = ledger.record(once)

    # Then it is recognised and nothing changes, duplicate counts included
    assert again.already_recorded
    assert again.new_events == again.duplicate_events == []
    assert again.latencies == []
    assert (again.new_inbound, again.duplicate_inbound) == (0, 0)
    assert ledger.counts() == counts
    assert ledger.get_message("m-1") == message


def test_a_read_receipt_sets_read_at_and_never_the_status(ledger: Ledger) -> None:
    ledger.record(receipt(event("m-1", "sent", 0, channel="whatsapp")))
    ledger.record(receipt(event("m-1", "delivered", 2, channel="whatsapp")))

    ledger.record(receipt(event("m-1", "read", 60, channel="whatsapp")))

    message = ledger.get_message("m-1")
    assert message is not None
    assert message.status == "delivered"
    assert message.status_time == T0 + timedelta(seconds=2)
    assert message.read_at == T0 + timedelta(seconds=60)


def test_a_message_with_only_a_read_receipt_has_no_status(ledger: Ledger) -> None:
    ledger.record(receipt(event("m-1", "read", 5)))

    message = ledger.get_message("m-1")
    assert message is not None
    assert message.status is None
    assert message.read_at == T0 + timedelta(seconds=5)


@pytest.mark.parametrize("order", list(itertools.permutations(["sent", "delivered", "received"])))
def test_a_final_status_outranks_the_others_whatever_the_arrival_order(
    ledger: Ledger, order: tuple[str, ...]
) -> None:
    # The delivered report carries an earlier timestamp than "received": it still wins.
    times = {"sent": 0, "delivered": 5, "received": 9}
    for status in order:
        ledger.record(receipt(event("m-1", status, times[status])))

    message = ledger.get_message("m-1")
    assert message is not None
    assert message.status == "delivered"
    assert message.is_final
    assert message.final_at == T0 + timedelta(seconds=5)
    assert message.latency_seconds == 5.0


def test_the_latency_is_observed_once_per_message(ledger: Ledger) -> None:
    # Given a sent message
    sent = receipt(event("m-1", "sent", 0, channel="rcs"))
    assert ledger.record(sent).latencies == []

    # When its final status arrives, the latency is reported
    delivered = receipt(event("m-1", "delivered", 7.5, channel="rcs"))
    first = ledger.record(delivered)
    assert first.latencies == [
        LatencyObservation(channel="rcs", outcome="delivered", seconds=7.5, country="IT")
    ]

    # And never again: not for a resent event, a redelivered receipt, a later final or a read
    assert ledger.record(receipt(event("m-1", "delivered", 7.5, channel="rcs"))).latencies == []
    assert ledger.record(delivered).latencies == []
    assert ledger.record(receipt(event("m-1", "expired", 90, channel="rcs"))).latencies == []
    assert ledger.record(receipt(event("m-1", "read", 100, channel="rcs"))).latencies == []


def test_a_final_status_before_the_sent_event_reports_latency_when_sent_arrives(
    ledger: Ledger,
) -> None:
    assert ledger.record(receipt(event("m-1", "error", 3, error="absent"))).latencies == []

    result = ledger.record(receipt(event("m-1", "sent", 1)))

    assert result.latencies == [
        LatencyObservation(channel="sms", outcome="error", seconds=2.0, country="IT")
    ]


def test_an_error_status_keeps_its_error_text(ledger: Ledger) -> None:
    ledger.record(receipt(event("m-1", "sent", 0), event("m-1", "error", 2, error="absent sub")))

    message = ledger.get_message("m-1")
    assert message is not None
    assert (message.status, message.error, message.is_final) == ("error", "absent sub", True)


def test_inbound_replies_are_kept_apart_from_statuses(ledger: Ledger) -> None:
    result = ledger.record(receipt(event("m-1", "sent", 0), inbound=(reply("in-1"),)))

    assert (result.new_inbound, result.duplicate_inbound) == (1, 0)
    counts = ledger.counts()
    assert (counts.events, counts.messages, counts.inbound) == (1, 1, 1)
    assert ledger.get_message("in-1") is None


def test_a_resent_inbound_reply_only_raises_its_duplicate_count(ledger: Ledger) -> None:
    ledger.record(receipt(inbound=(reply("in-1"),)))

    result = ledger.record(receipt(inbound=(reply("in-1"), reply("in-1"), reply("in-2"))))

    assert (result.new_inbound, result.duplicate_inbound) == (1, 2)
    counts = ledger.counts()
    assert (counts.inbound, counts.inbound_duplicates) == (2, 2)
    assert counts.messages == 0


def test_each_part_of_a_multi_part_sms_is_its_own_event(ledger: Ledger) -> None:
    parts = [
        event("m-1", "delivered", 4, part=n, total_parts=3, shape=Shape.UNIVERSAL, price=0.035)
        for n in (1, 2, 3)
    ]
    ledger.record(receipt(parts[2], parts[0]))
    ledger.record(receipt(parts[1], parts[2]))

    message = ledger.get_message("m-1")
    assert message is not None
    assert message.event_count == 3
    assert message.duplicate_count == 1
    assert [(e.part, e.total_parts, e.duplicates) for e in message.events] == [
        (1, 3, 0),
        (2, 3, 0),
        (3, 3, 1),
    ]
    assert {e.shape for e in message.events} == {Shape.UNIVERSAL}
    assert {e.price for e in message.events} == {0.035}


def test_a_multi_part_sms_with_a_failed_part_is_recorded_as_failed_once_every_part_is_in(
    ledger: Ledger,
) -> None:
    def part(n: int, status: str, at: float, error: str | None = None) -> DeliveryEvent:
        return event("m-1", status, at, part=n, total_parts=2, shape=Shape.UNIVERSAL, error=error)

    ledger.record(receipt(event("m-1", "sent", 0)))
    first = ledger.record(receipt(part(2, "delivered", 45)))
    halfway = ledger.get_message("m-1")
    last = ledger.record(receipt(part(1, "error", 44, "Not delivered")))

    assert halfway is not None
    assert (halfway.status, halfway.is_final, halfway.latency_seconds) == ("sent", False, None)
    assert first.latencies == []
    message = ledger.get_message("m-1")
    assert message is not None
    assert (message.status, message.is_final, message.error) == ("error", True, "Not delivered")
    assert message.latency_seconds == 45.0
    assert last.latencies == [
        LatencyObservation(channel="sms", outcome="error", seconds=45.0, country="IT")
    ]


def test_unknown_statuses_and_channels_are_kept(ledger: Ledger) -> None:
    ledger.record(receipt(event("m-1", "queued", 0, channel="carrier-pigeon")))
    ledger.record(receipt(event("m-1", "42", 1, channel="carrier-pigeon")))

    message = ledger.get_message("m-1")
    assert message is not None
    assert message.channel == "carrier-pigeon"
    assert [e.status for e in message.events] == ["queued", "42"]
    assert message.status == "42"  # the latest of two non-final statuses
    assert "carrier-pigeon" in ledger.webhook_stats().last_event_at


def test_events_are_listed_by_time_then_precedence_then_part(ledger: Ledger) -> None:
    ledger.record(
        receipt(
            event("m-1", "delivered", 5, part=2, total_parts=2),
            event("m-1", "delivered", 5, part=1, total_parts=2),
            event("m-1", "error", 5),
            event("m-1", "sent", 0),
            event("m-1", "received", 5),
        )
    )

    message = ledger.get_message("m-1")
    assert message is not None
    assert [(e.status, e.part) for e in message.events] == [
        ("sent", 1),
        ("received", 1),
        ("error", 1),
        ("delivered", 1),
        ("delivered", 2),
    ]


def test_one_receipt_updates_every_message_it_names(ledger: Ledger) -> None:
    result = ledger.record(
        receipt(event("m-2", "sent", 0), event("m-1", "sent", 0), event("m-1", "delivered", 1))
    )

    assert [obs.outcome for obs in result.latencies] == ["delivered"]
    first, second = ledger.get_message("m-1"), ledger.get_message("m-2")
    assert first is not None
    assert second is not None
    assert (first.status, second.status) == ("delivered", "sent")


def test_every_datetime_returned_is_timezone_aware_utc(ledger: Ledger) -> None:
    ledger.record(receipt(event("m-1", "sent", 0), event("m-1", "read", 9)))

    message = ledger.get_message("m-1")
    assert message is not None
    stamps = [message.status_time, message.sent_at, message.read_at]
    stamps += [message.first_received_at, message.updated_at]
    stamps += [e.event_time for e in message.events] + [e.received_at for e in message.events]
    assert all(s is not None and s.utcoffset() == timedelta(0) for s in stamps)
    assert all(s is not None and s.tzinfo is UTC for s in stamps)


def test_an_event_whose_text_had_a_nul_character_is_recorded_on_every_backend(
    ledger: Ledger,
) -> None:
    # PostgreSQL text cannot hold NUL: the parser replaces it, raw keeps the original bytes
    body = (
        b'{"messageId":"m-nul","status":"ERROR","timestamp":"2025-04-08T14:30:00Z",'
        b'"channel":"sms","error":"bad\\u0000thing"}'
    )
    parsed = parse_body(body)
    receipt = Receipt(receipt_id="r-nul", received_at=1_744_120_000.0, events=tuple(parsed.events))
    [result] = ledger.record_many([receipt])
    assert len(result.new_events) == 1
    detail = ledger.get_message("m-nul")
    assert detail is not None
    assert detail.events[0].error == "bad\ufffdthing"


def test_an_event_timed_at_its_receipt_is_stored_and_read_back_as_such(ledger: Ledger) -> None:
    received = T0 + timedelta(days=1)
    parsed = parse_body(
        b'[{"messageId":"m-1","status":"DELIVERED"},'
        b'{"eventType":"INBOUND","messageId":"i-1","text":"hi"}]',
        received_at=received.timestamp(),
    )
    ledger.record(
        Receipt(
            receipt_id="r-1",
            received_at=received.timestamp(),
            events=tuple(parsed.events),
            inbound=tuple(parsed.inbound),
        )
    )

    message = ledger.get_message("m-1")
    assert message is not None
    [stored] = message.events
    assert (stored.event_time, stored.time_from_receipt) == (received, True)
    assert (message.status, message.status_time) == ("delivered", received)
