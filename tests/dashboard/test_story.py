"""A message's story: the deciding event, copies, late arrivals, the read receipt; and the
CSV export of messages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine

from dashboard import queries
from dashboard.export import COLUMNS, messages_csv
from dashboard.story import headline, tell
from tests.dashboard.seed import NOW, record
from tests.ledger.samples import event


def test_the_story_names_the_deciding_event_copies_and_late_arrivals(seeded: Engine) -> None:
    # Given the delivery report arrived first, then the sent one, then a copy of it
    later = NOW - timedelta(minutes=10)
    record(seeded, later, event("late", "delivered", 30, channel="sms"))
    record(seeded, later + timedelta(seconds=5), event("late", "sent", 0, channel="sms"))
    record(seeded, later + timedelta(seconds=9), event("late", "sent", 0, channel="sms"))

    with seeded.connect() as conn:
        message = queries.message_detail(conn, "late")
    assert message is not None
    story = tell(message)

    assert story.deciding is not None
    assert story.deciding.status == "delivered"
    assert story.duplicates == 1
    assert [e.status for e in story.late] == ["sent"]
    told = " ".join(story.sentences())
    assert "1 extra copies" in told
    assert "Arrived out of order: sent." in told


def test_a_message_with_only_a_read_receipt_has_no_deciding_event(seeded: Engine) -> None:
    record(seeded, NOW, event("only-read", "read", 0, channel="whatsapp"))

    with seeded.connect() as conn:
        message = queries.message_detail(conn, "only-read")
    assert message is not None

    story = tell(message)
    assert story.deciding is None
    assert "Only read receipts arrived" in story.sentences()[0]


def test_the_csv_has_a_header_and_a_row_per_message_with_phones_masked(seeded: Engine) -> None:
    with seeded.connect() as conn:
        rows = queries.all_messages(conn, start=NOW - timedelta(hours=1), end=NOW, limit=100)

    text = messages_csv(rows)

    lines = text.splitlines()
    assert lines[0] == ",".join(COLUMNS)
    assert len(lines) == 1 + 7
    assert "+39******4567" in text
    assert "+393901234567" not in text


def test_the_story_of_a_multi_part_sms_names_the_failed_part_and_the_missing_one(
    seeded: Engine,
) -> None:
    # Given part 1 of 3 not delivered and part 3 of 3 delivered; part 2 never reported
    record(seeded, NOW, event("parts", "error", 44, part=1, total_parts=3, error="Not delivered"))
    record(seeded, NOW, event("parts", "delivered", 45, part=3, total_parts=3))

    with seeded.connect() as conn:
        message = queries.message_detail(conn, "parts")
    assert message is not None
    story = tell(message)

    assert (message.status, message.is_final) == ("sent", False)
    assert [p.status for p in story.parts] == ["error", None, "delivered"]
    told = " ".join(story.sentences())
    assert "final only once every part has" in told
    assert "1 of 3 error at" in told
    assert "(Not delivered)" in told
    assert "2 of 3 no report yet" in told
    assert "Waiting for part 2." in told


@pytest.mark.parametrize(
    ("message_id", "expected"),
    [
        ("d1", "Delivered to +39******4567 at 11:20:10 UTC, 10.0 s after it was sent."),
        (
            "d3",
            "Delivered to +49******4567 at 11:22:20 UTC, 20.0 s after it was sent; read at "
            "11:25:00 UTC.",
        ),
        (
            "e1",
            "Not delivered to +33*****0001: Blocked by carrier; Qlara said so at 11:23:05 UTC, "
            "5.0 s after it was sent.",
        ),
        (
            "x1",
            "Expired to +33*****0001 at 11:25:00 UTC, 60.0 min after it was sent: Qlara could "
            "not deliver it in time.",
        ),
        ("p1", "Sent to +33*****0001 at 11:29:00 UTC, 31.0 min ago; no final status yet."),
        ("s3", "Sent to +33*****0001 at 05:00:00 UTC, 7.0 h ago; no final status yet."),
    ],
)
def test_the_headline_says_in_one_sentence_what_happened(
    seeded: Engine, message_id: str, expected: str
) -> None:
    with seeded.connect() as conn:
        message = queries.message_detail(conn, message_id)
    assert message is not None

    assert headline(message, NOW) == expected


def test_the_headline_names_the_day_when_it_is_not_today(seeded: Engine) -> None:
    with seeded.connect() as conn:
        message = queries.message_detail(conn, "d1")
    assert message is not None

    told = headline(message, NOW + timedelta(days=1))

    assert told.startswith("Delivered to +39******4567 at 11:20:10 UTC on 01 Mar 2025,")
