"""`execute_rows` and `execute_mappings` write exactly what `Connection.execute` with parameter
dicts writes; `execute_mappings` refuses rows that do not name exactly its keys."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from ledger import Ledger
from ledger.bulk import execute_mappings, execute_rows
from ledger.schema import channels, events

_KEYS = [c.key for c in events.c if c.key != "id"]
_INSERT = events.insert().inline()


def _row(message_id: str, when: datetime) -> dict[str, object]:
    return {
        "message_id": message_id,
        "status": "DELIVERED",
        "event_time": when,
        "part": 1,
        "total_parts": 2,
        "status_code": None,
        "channel": "sms",
        "customer_message_id": "c-1",
        "phone": "+390000000000",
        "error": "é \ufffd",
        "shape": "f",
        "price": 0.05,
        "naive_time": True,
        "raw": b"\x00{}",
        "received_at": datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        "receipt_id": "r-1",
        "duplicates": 0,
        "time_from_receipt": True,
        "source": "app",
    }


def test_rows_as_tuples_store_what_dicts_store(ledger: Ledger) -> None:
    # Not UTC on the way in: stored as the same instant either way.
    when = datetime(2026, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=2)))
    via_dicts, via_tuples = _row("m-dict", when), _row("m-tuple", when)
    with ledger._writer.begin() as conn:
        conn.execute(events.insert(), [via_dicts])
        execute_rows(conn, _INSERT, _KEYS, [tuple(via_tuples[k] for k in _KEYS)])
    with ledger._writer.begin() as conn:
        stored = {
            row.message_id: row._asdict()
            for row in conn.execute(select(*[events.c[k] for k in _KEYS]))
        }
    assert stored["m-tuple"] == {**stored["m-dict"], "message_id": "m-tuple"}
    assert stored["m-tuple"]["event_time"] == when
    assert stored["m-tuple"]["raw"] == b"\x00{}"


def test_mappings_store_what_dicts_store_whatever_the_keys_order(ledger: Ledger) -> None:
    when = datetime(2026, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=2)))
    via_dicts, via_mappings = _row("m-dict", when), _row("m-mapping", when)
    with ledger._writer.begin() as conn:
        conn.execute(events.insert(), [via_dicts])
        # Keys in another order than the statement binds them: values still go by name
        execute_mappings(conn, _INSERT, _KEYS[::-1], [dict(reversed(via_mappings.items()))])
    with ledger._writer.begin() as conn:
        stored = {
            row.message_id: row._asdict()
            for row in conn.execute(select(*[events.c[k] for k in _KEYS]))
        }
    assert stored["m-mapping"] == {**stored["m-dict"], "message_id": "m-mapping"}


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda row: row.pop("price"), r"lacks \['price'\] and has \[\]"),
        (lambda row: row.update(carrier="tim"), r"lacks \[\] and has \['carrier'\]"),
    ],
    ids=["lacking a key", "naming another"],
)
def test_a_row_that_does_not_name_exactly_the_keys_is_refused(
    ledger: Ledger, change: Callable[[dict[str, object]], object], named: str
) -> None:
    # Given rows of which the last lacks a key or has one more
    rows = [_row("m-1", datetime.now(UTC)), _row("m-2", datetime.now(UTC))]
    change(rows[-1])

    # Then they are refused, naming what is wrong, and nothing is written
    with ledger._writer.begin() as conn, pytest.raises(ValueError, match=named):
        execute_mappings(conn, _INSERT, _KEYS, rows)
    with ledger._writer.begin() as conn:
        assert conn.execute(select(events.c.id)).all() == []


def test_a_key_the_statement_does_not_bind_is_refused(ledger: Ledger) -> None:
    row = {**_row("m-1", datetime.now(UTC)), "carrier": "tim"}
    with ledger._writer.begin() as conn, pytest.raises(ValueError, match="binds"):
        execute_mappings(conn, _INSERT, [*_KEYS, "carrier"], [row])


def test_parameters_out_of_the_statements_order_are_refused(ledger: Ledger) -> None:
    with ledger._writer.begin() as conn, pytest.raises(ValueError, match="in order"):
        execute_rows(
            conn,
            channels.insert().inline(),
            ["first_seen_at", "channel"],
            [(datetime.now(UTC), "sms")],
        )


def test_a_naive_datetime_is_refused(ledger: Ledger) -> None:
    row = _row("m-naive", datetime(2026, 5, 6, 7, 8, 9))
    with ledger._writer.begin() as conn, pytest.raises(ValueError, match="timezone-aware"):
        execute_rows(conn, _INSERT, _KEYS, [tuple(row[k] for k in _KEYS)])
