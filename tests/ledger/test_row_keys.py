"""The write path's rows agree with its key lists: each key names a column of its table, each
value lands in the column its key names, and a column a migration adds that the rows do not
name is refused loudly instead of shifting the values after it."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import Column, MetaData, String, Table, select
from sqlalchemy.dialects import sqlite

from ledger import Ledger, places, recording, rollup
from ledger.schema import event_minutes, events, latency_hours, message_hours, messages
from qlara import DeliveryEvent, Shape, Source, destination, reduce_state
from tests.ledger.samples import PHONE, event, receipt


def test_every_key_list_names_columns_of_its_table() -> None:
    for keys, table in [
        (recording._EVENT_KEYS, events),
        (places._KEYS, message_hours),
        (places._LATENCY_KEYS, latency_hours),
        (rollup._KEYS, event_minutes),
    ]:
        assert set(keys) <= set(table.c.keys()), table.name
    # The events insert sets every column but the generated id
    assert [c.key for c in events.c if c.key != "id"] == recording._EVENT_KEYS


def test_each_parameter_of_the_messages_update_sets_the_column_it_names() -> None:
    sql = str(recording._UPDATE_MESSAGE.compile(dialect=sqlite.dialect(paramstyle="named")))
    assigned = dict(re.findall(r"(\w+)=\(?(?:messages\.\w+ \+ )?:k_(\w+)", sql))
    where = re.findall(r"WHERE messages\.(\w+) = :k_(\w+)", sql)

    assert where == [("message_id", "message_id")]
    assert assigned.pop("duplicate_count") == "extra"
    assert all(column == key for column, key in assigned.items()), assigned
    assert {f"k_{key}" for key in [*assigned, "extra", "message_id"]} == set(
        recording._UPDATE_MESSAGE_KEYS
    )


def _stored_row(ledger: Ledger, table: Table, message_id: str) -> dict[str, Any]:
    with ledger._writer.begin() as conn:
        rows = conn.execute(select(table).where(table.c.message_id == message_id)).all()
    return [row._asdict() for row in rows][-1]


def test_an_event_row_holds_each_value_in_the_column_of_its_name(ledger: Ledger) -> None:
    # Given an event whose every column holds a value no other column holds
    sent = DeliveryEvent(
        message_id="m-rows",
        status="sent",
        event_time=event("m-rows").event_time,
        shape=Shape.UNIVERSAL,
        raw=b'{"raw": true}',
        channel="sms",
        customer_message_id="order-7",
        phone=PHONE,
        error="no credit",
        status_code=26,
        part=2,
        total_parts=3,
        price=0.25,
        naive_time=True,
        source=Source.POLL,
    )
    carried = receipt(sent)

    # When it is recorded
    ledger.record(carried)

    # Then each column holds the event's value of that name
    stored = _stored_row(ledger, events, "m-rows")
    expected = {key: getattr(sent, key) for key in recording._EVENT_KEYS if hasattr(sent, key)} | {
        "shape": "C",
        "source": "poll",
        "receipt_id": carried.receipt_id,
        "duplicates": 0,
    }
    assert {key: stored[key] for key in expected} == expected
    assert stored["received_at"].timestamp() == pytest.approx(carried.received_at)
    assert set(stored) == {"id", *expected, "received_at"}


def test_an_updated_message_holds_each_value_in_the_column_of_its_name(ledger: Ledger) -> None:
    # Given a message sent, then delivered in another receipt, priced (its row is updated)
    sent = event("m-upd", "sent", 0, customer_message_id="order-8", price=0.5)
    delivered = event("m-upd", "delivered", 7, error="late", price=0.25)
    ledger.record(receipt(sent))
    ledger.record(receipt(delivered))
    ledger.record(receipt(delivered))  # a duplicate

    # Then each state column holds the state's value of that name
    stored = _stored_row(ledger, messages, "m-upd")
    state = reduce_state([sent, delivered])
    where = destination(PHONE)
    for key in recording._UPDATE_MESSAGE_KEYS:
        name = key.removeprefix("k_")
        if hasattr(state, name):
            assert stored[name] == getattr(state, name), name
    assert stored["latency_seconds"] == 7
    assert stored["latency_observed_at"] is not None
    assert (stored["country"], stored["operator"]) == (where.country, where.operator)
    assert (stored["price"], stored["event_count"], stored["duplicate_count"]) == (0.75, 2, 1)


def test_a_column_the_rows_do_not_name_is_refused_not_shifted_into(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a migration that added a column to events, before the last ones, that the rows
    # are not built with
    columns = []
    for column in events.c:
        columns.append(Column(column.name, column.type, primary_key=column.primary_key))
        if column.key == "price":
            columns.append(Column("carrier", String))
    migrated = Table("events", MetaData(), *columns)
    monkeypatch.setattr(recording, "_EVENT_KEYS", [c.key for c in migrated.c if c.key != "id"])
    monkeypatch.setattr(recording, "_INSERT_EVENT", migrated.insert().inline())

    # Then recording refuses, naming the column, and records nothing
    with pytest.raises(ValueError, match=r"lacks \['carrier'\]"):
        ledger.record(receipt(event("m-new", "sent", 0)))
    assert ledger.get_message("m-new") is None
