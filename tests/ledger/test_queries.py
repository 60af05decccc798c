"""Reading messages back: filters, newest-first order, keyset pagination."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ledger import Ledger
from tests.ledger.samples import event, receipt


def _ids(ledger: Ledger, **filters: Any) -> list[str]:
    page = ledger.list_messages(**filters)
    return [m.message_id for m in page.items]


def test_an_unknown_message_is_none(ledger: Ledger) -> None:
    assert ledger.get_message("never-seen") is None


def test_messages_are_listed_newest_update_first(ledger: Ledger) -> None:
    for message_id in ("m-a", "m-b", "m-c"):
        ledger.record(receipt(event(message_id, "sent", 0)))
    ledger.record(receipt(event("m-a", "delivered", 5)))

    assert _ids(ledger) == ["m-a", "m-c", "m-b"]


def test_a_duplicate_does_not_move_a_message_up_the_list(ledger: Ledger) -> None:
    ledger.record(receipt(event("m-a", "sent", 0)))
    ledger.record(receipt(event("m-b", "sent", 0)))

    ledger.record(receipt(event("m-a", "sent", 0)))

    assert _ids(ledger) == ["m-b", "m-a"]


def test_the_cursor_walks_every_message_exactly_once(ledger: Ledger) -> None:
    # Given 23 messages, some updated in the same receipt (same update time)
    ledger.record(receipt(*(event(f"m-{n:02}", "sent", 0) for n in range(10))))
    for n in range(10, 23):
        ledger.record(receipt(event(f"m-{n:02}", "sent", 0)))

    # When walking pages of 5
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = ledger.list_messages(limit=5, cursor=cursor)
        seen += [m.message_id for m in page.items]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break

    # Then every message comes once, newest first, and the last page says it is the last
    assert pages == 5
    assert seen == [f"m-{n:02}" for n in reversed(range(23))]


def test_a_page_that_ends_exactly_at_the_last_message_has_no_cursor(ledger: Ledger) -> None:
    ledger.record(receipt(event("m-1", "sent", 0), event("m-2", "sent", 0)))

    page = ledger.list_messages(limit=2)

    assert len(page.items) == 2
    assert page.next_cursor is None


def test_messages_are_filtered_by_customer_message_id(ledger: Ledger) -> None:
    ledger.record(receipt(event("m-1", "sent", 0, customer_message_id="order-1")))
    ledger.record(receipt(event("m-2", "sent", 0, customer_message_id="order-2")))

    assert _ids(ledger, customer_message_id="order-1") == ["m-1"]


def test_messages_are_filtered_by_status_and_channel(ledger: Ledger) -> None:
    ledger.record(receipt(event("m-1", "sent", 0, channel="sms")))
    ledger.record(receipt(event("m-2", "sent", 0, channel="whatsapp")))
    ledger.record(receipt(event("m-3", "delivered", 0, channel="whatsapp")))

    assert _ids(ledger, status="SENT") == ["m-2", "m-1"]
    assert _ids(ledger, channel="WhatsApp") == ["m-3", "m-2"]
    assert _ids(ledger, status="sent", channel="whatsapp") == ["m-2"]


@pytest.mark.parametrize("query", ["4567", "+39 390 123", "0039 3901234567", "390-12"])
def test_a_partial_phone_number_finds_the_message(ledger: Ledger, query: str) -> None:
    ledger.record(receipt(event("m-1", "sent", 0, phone="+393901234567")))
    ledger.record(receipt(event("m-2", "sent", 0, phone="+447700900123")))

    assert _ids(ledger, phone=query) == ["m-1"]


def test_a_phone_filter_without_digits_matches_nothing(ledger: Ledger) -> None:
    ledger.record(receipt(event("m-1", "sent", 0)))

    assert _ids(ledger, phone="+") == []
    assert _ids(ledger, phone="abc") == []


def test_since_and_until_bound_the_update_time(ledger: Ledger) -> None:
    ledger.record(receipt(event("m-1", "sent", 0)))
    after_first = datetime.now(UTC)
    ledger.record(receipt(event("m-2", "sent", 0)))
    after_second = datetime.now(UTC)
    ledger.record(receipt(event("m-3", "sent", 0)))

    assert _ids(ledger, since=after_first) == ["m-3", "m-2"]
    assert _ids(ledger, until=after_second) == ["m-2", "m-1"]
    assert _ids(ledger, since=after_first, until=after_second) == ["m-2"]


def test_the_page_size_is_capped_at_500(ledger: Ledger) -> None:
    ledger.record(receipt(*(event(f"m-{n:03}", "sent", 0) for n in range(501))))

    page = ledger.list_messages(limit=10_000)

    assert len(page.items) == 500
    assert page.next_cursor is not None


def test_a_limit_below_one_is_refused(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="limit"):
        ledger.list_messages(limit=0)


def test_a_foreign_cursor_is_refused(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="invalid cursor"):
        ledger.list_messages(cursor="not-a-cursor")


def test_naive_datetimes_are_refused(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ledger.list_messages(since=datetime(2025, 1, 1))
