"""The dead-letter record: kept with the reason, listed until redriven."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ledger import Ledger


def test_a_dead_letter_is_kept_with_its_reason_until_redriven(ledger: Ledger) -> None:
    # Given two receipts the workers gave up on
    first = ledger.add_dead_letter(payload='{"a":1}', reason="bad", attempts=3, receipt_id="r-1")
    second = ledger.add_dead_letter(payload='{"b":2}', reason="worse", attempts=5)
    before = datetime.now(UTC)

    # When the first is redriven
    ledger.mark_redriven(first)

    # Then only the second waits, and the first is still listed on request
    waiting = ledger.dead_letters()
    assert [(d.id, d.reason, d.attempts, d.receipt_id) for d in waiting] == [
        (second, "worse", 5, None)
    ]
    everything = ledger.dead_letters(include_redriven=True)
    assert [d.id for d in everything] == [first, second]
    redriven = everything[0]
    assert redriven.payload == '{"a":1}'
    assert redriven.redriven_at is not None
    assert redriven.redriven_at >= before
    assert redriven.failed_at <= redriven.redriven_at
    assert ledger.counts().dead_letters == 2


def test_marking_a_dead_letter_redriven_again_keeps_the_first_time(ledger: Ledger) -> None:
    dead = ledger.add_dead_letter(payload="{}", reason="bad", attempts=1)
    ledger.mark_redriven(dead)
    first_time = ledger.dead_letters(include_redriven=True)[0].redriven_at

    ledger.mark_redriven(dead)

    assert ledger.dead_letters(include_redriven=True)[0].redriven_at == first_time


def test_marking_an_unknown_dead_letter_raises_key_error(ledger: Ledger) -> None:
    with pytest.raises(KeyError):
        ledger.mark_redriven(12345)


def test_the_dead_letter_list_is_limited(ledger: Ledger) -> None:
    for n in range(5):
        ledger.add_dead_letter(payload="{}", reason=f"r{n}", attempts=1)

    assert [d.reason for d in ledger.dead_letters(limit=2)] == ["r0", "r1"]
