"""Messages counted by hour of their last change and destination (:mod:`ledger.places`):
always the sum the messages themselves give, whatever changes them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import delete, func, select

from ledger import Ledger
from ledger import places as ledger_places
from ledger.recording import record_receipts
from ledger.schema import message_hours
from qlara import DeliveryEvent
from tests.ledger.places_check import (
    counted,
    latencies_counted,
    latencies_rolled_up,
    rolled_up,
)
from tests.ledger.samples import event, receipt
from tests.ledger.test_sends import send

NOON = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
IT, FR = "+393471234567", "+33600000001"


def _record(ledger: Ledger, now: datetime, *events: DeliveryEvent) -> None:
    with ledger._writer.begin() as conn:
        record_receipts(conn, [receipt(*events, received_at=now)], now)


def _story(ledger: Ledger) -> None:
    """Messages created, changed within and across hours, folded, repeated."""
    at = NOON - timedelta(hours=3)
    _record(ledger, at, event("m-1", "sent", 0, phone=IT), event("m-2", "sent", 0, phone=FR))
    _record(ledger, at + timedelta(minutes=5), event("m-1", "delivered", 4, phone=IT))
    # a new hour: m-2 fails, priced; a duplicate changes nothing
    at += timedelta(hours=1, minutes=10)
    _record(ledger, at, event("m-2", "error", 9, phone=FR, price=0.05))
    _record(ledger, at, event("m-2", "error", 9, phone=FR, price=0.05))
    # the app's send under a placeholder, folded into its message when Qlara names both
    _record(ledger, at, send(customer_id="order-1", at=0))
    at += timedelta(hours=1)
    _record(
        ledger,
        at,
        event("m-3", "delivered", 7, phone=IT, customer_message_id="order-1", price=0.035),
    )
    # a later final status moves m-1 again, to the last hour
    _record(ledger, NOON - timedelta(minutes=1), event("m-1", "read", 20, phone=IT))


def test_the_hours_always_sum_to_what_the_messages_give(ledger: Ledger) -> None:
    _story(ledger)

    with ledger._writer.begin() as conn:
        rolled, exact = rolled_up(conn), counted(conn)
        latencies = latencies_rolled_up(conn)
        assert latencies == latencies_counted(conn)
    assert rolled == exact
    assert sum(v[0] for v in exact.values()) == 3  # m-1, m-2, m-3: the placeholder folded
    assert sum(latencies.values()) == 2  # m-1 and m-3 delivered, each timed from its send


def test_compaction_leaves_one_row_per_key_and_the_same_sums(ledger: Ledger) -> None:
    _story(ledger)
    with ledger._writer.begin() as conn:
        before = rolled_up(conn), latencies_rolled_up(conn)
        removed = ledger_places.compact(conn, NOON - timedelta(days=1), NOON + timedelta(hours=1))
        rows = conn.execute(select(func.count()).select_from(message_hours)).scalar_one()
        after = rolled_up(conn), latencies_rolled_up(conn)

    assert removed > 0
    assert after == before
    assert rows == len(after[0])  # keys that summed to nothing are gone


def test_a_window_with_partial_hours_is_read_exactly(ledger: Ledger) -> None:
    _story(ledger)
    start, end = NOON - timedelta(hours=2, minutes=55), NOON - timedelta(minutes=30)

    with ledger._writer.begin() as conn:
        found = ledger_places.read(conn, start, end, lambda column: None)
        whatsapp = ledger_places.read(conn, start, end, lambda column: column == "whatsapp")
        # what grouping the window's messages directly gives
        rows = conn.execute(
            select(
                ledger_places.COLUMNS[1],
                ledger_places.COLUMNS[2],
                ledger_places.COLUMNS[3],
                ledger_places.COLUMNS[4],
                func.count(),
            )
            .where(ledger_places.COLUMNS[0] >= start, ledger_places.COLUMNS[0] < end)
            .group_by(*ledger_places.COLUMNS[1:5])
        ).all()

    assert {k: v[0] for k, v in found.items()} == {tuple(r[:4]): r[4] for r in rows}
    assert sum(v[0] for v in found.values()) == 2  # m-2 (error) and m-3; m-1 moved to noon
    assert whatsapp == {}


def test_purging_takes_the_purged_messages_out_of_their_hours(ledger: Ledger) -> None:
    _story(ledger)
    # everything received before two hours ago goes (m-2's events, m-1's early ones)
    ledger.purge(NOON - timedelta(hours=1, minutes=30))

    with ledger._writer.begin() as conn:
        assert rolled_up(conn) == counted(conn)
        assert latencies_rolled_up(conn) == latencies_counted(conn)
        conn.execute(delete(message_hours))
        assert rolled_up(conn) != counted(conn)  # the check can fail


@given(st.floats(min_value=0.0, max_value=30 * 86_400.0, allow_nan=False))
def test_a_latency_s_bucket_middle_is_within_2_2_percent_of_it(seconds: float) -> None:
    bucket = ledger_places.latency_bucket(seconds)
    middle = ledger_places.bucket_middle(bucket)
    if seconds <= ledger_places.LATENCY_FLOOR:
        assert bucket == 0
    else:
        assert abs(middle - seconds) <= 0.022 * seconds
    # buckets are ordered as the latencies are
    assert ledger_places.latency_bucket(seconds * 1.1 + 0.01) >= bucket
