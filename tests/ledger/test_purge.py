"""Retention: what purge deletes, what it keeps, and that writers may run meanwhile."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from ledger import Ledger
from tests.ledger.samples import event, receipt, reply

LONG_AGO = datetime.now(UTC) - timedelta(days=40)
CUT_OFF = datetime.now(UTC) - timedelta(days=30)


def test_purge_deletes_old_events_and_the_messages_left_without_events(ledger: Ledger) -> None:
    ledger.record(receipt(event("m-old", "sent", 0), received_at=LONG_AGO))
    ledger.record(receipt(event("m-new", "sent", 0)))

    result = ledger.purge(CUT_OFF)

    assert (result.events, result.messages) == (1, 1)
    assert ledger.get_message("m-old") is None
    assert ledger.get_message("m-new") is not None


def test_purge_keeps_a_message_that_still_has_recent_events(ledger: Ledger) -> None:
    ledger.record(receipt(event("m-1", "sent", 0), received_at=LONG_AGO))
    ledger.record(receipt(event("m-1", "delivered", 5)))

    result = ledger.purge(CUT_OFF)

    assert (result.events, result.messages) == (1, 0)
    message = ledger.get_message("m-1")
    assert message is not None
    assert [e.status for e in message.events] == ["delivered"]
    assert message.status == "delivered"


def test_purge_deletes_inbound_by_receipt_time_and_receipts_by_recording_time(
    ledger: Ledger,
) -> None:
    # Given an old reply and a new one, both recorded just now
    ledger.record(receipt(inbound=(reply("in-old"),), received_at=LONG_AGO))
    ledger.record(receipt(inbound=(reply("in-new"),)))

    # When purging what is older than 30 days, the old reply goes; the receipts stay
    first = ledger.purge(CUT_OFF)
    assert (first.inbound, first.receipts) == (1, 0)
    assert ledger.counts().inbound == 1

    # And a cut-off after their recording removes the receipts too
    second = ledger.purge(datetime.now(UTC) + timedelta(seconds=1))
    assert second.receipts == 2


def test_purge_deletes_only_dead_letters_redriven_before_the_cut_off(ledger: Ledger) -> None:
    waiting = ledger.add_dead_letter(payload="{}", reason="waiting", attempts=1)
    redriven = ledger.add_dead_letter(payload="{}", reason="redriven", attempts=1)
    ledger.mark_redriven(redriven)

    result = ledger.purge(datetime.now(UTC) + timedelta(seconds=1))

    assert result.dead_letters == 1
    assert [d.id for d in ledger.dead_letters(include_redriven=True)] == [waiting]


def test_purge_while_writers_record_loses_no_recent_event(database_url: str) -> None:
    # Given old messages, some of which keep receiving events
    setup = Ledger.connect(database_url)
    old_ids = [f"m-{n:03}" for n in range(60)]
    setup.record(receipt(*(event(m, "sent", 0) for m in old_ids), received_at=LONG_AGO))
    setup.close()
    live_ids = old_ids[::3] + [f"n-{n:03}" for n in range(20)]

    # When purges run while two writers record recent events of those messages
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def write(ids: list[str]) -> None:
        writer = Ledger.connect(database_url, migrate=False)
        try:
            start.wait()
            for message_id in ids:
                writer.record(receipt(event(message_id, "delivered", 9)))
        except BaseException as exc:
            errors.append(exc)
        finally:
            writer.close()

    def purge() -> None:
        purger = Ledger.connect(database_url, migrate=False)
        try:
            start.wait()
            for _ in range(5):
                purger.purge(CUT_OFF)
        except BaseException as exc:
            errors.append(exc)
        finally:
            purger.close()

    threads = [
        threading.Thread(target=write, args=(live_ids[::2],)),
        threading.Thread(target=write, args=(live_ids[1::2],)),
        threading.Thread(target=purge),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    check = Ledger.connect(database_url, migrate=False)
    check.purge(CUT_OFF)

    # Then every recent event is there with its message, and every old event is gone
    assert errors == []
    for message_id in live_ids:
        message = check.get_message(message_id)
        assert message is not None, message_id
        assert [e.status for e in message.events] == ["delivered"]
        assert message.status == "delivered"
    for message_id in set(old_ids) - set(live_ids):
        assert check.get_message(message_id) is None
    counts = check.counts()
    assert (counts.events, counts.messages) == (len(live_ids), len(live_ids))
    check.close()
