"""A message's story: the deciding event, copies, late arrivals, the read receipt; and the
CSV export of messages."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine

from dashboard import queries
from dashboard.export import COLUMNS, messages_csv
from dashboard.story import tell
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
