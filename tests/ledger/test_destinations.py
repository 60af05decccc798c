"""Each message's destination and price: set as it is recorded, and filled in by the
migration for messages recorded before it."""

from __future__ import annotations

from datetime import timedelta

from alembic import command
from sqlalchemy import insert, select

from ledger import Ledger
from ledger.engine import WRITE_OPTION, build_engine
from ledger.migrate import alembic_config
from ledger.schema import events, messages
from qlara import Shape
from tests.ledger.samples import T0, event, receipt


def _destinations(url: str) -> dict[str, tuple[str | None, str | None, float | None]]:
    engine = build_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(
                    messages.c.message_id, messages.c.country, messages.c.operator, messages.c.price
                )
            )
            return {r.message_id: (r.country, r.operator, r.price) for r in rows}
    finally:
        engine.dispose()


def test_a_message_keeps_its_country_operator_and_the_sum_of_its_parts_prices(
    ledger: Ledger, database_url: str
) -> None:
    universal = {"shape": Shape.UNIVERSAL, "channel": "sms", "phone": None, "total_parts": 2}
    ledger.record(receipt(event("m-it", "sent", 0, phone="+393471234567")))
    # The SMS Universal callback names no phone and prices each part; the send named it
    ledger.record(receipt(event("m-it", "delivered", 5, part=1, price=0.035, **universal)))
    ledger.record(receipt(event("m-it", "delivered", 6, part=2, price=0.035, **universal)))
    # the same part again: a duplicate, not paid twice
    ledger.record(receipt(event("m-it", "delivered", 6, part=2, price=0.035, **universal)))
    ledger.record(receipt(event("m-de", "error", 3, phone="+4915123456789")))
    ledger.record(receipt(event("m-none", "sent", 0, phone=None)))

    found = _destinations(database_url)

    assert found["m-it"][:2] == ("IT", "Vodafone")
    assert found["m-it"][2] is not None
    assert round(found["m-it"][2], 6) == 0.07
    assert found["m-de"] == ("DE", "T-Mobile", None)
    assert found["m-none"] == (None, None, None)


def test_the_migration_fills_in_the_messages_recorded_before_it(database_url: str) -> None:
    engine = build_engine(database_url)
    try:
        config = alembic_config()
        with engine.execution_options(**{WRITE_OPTION: True}).begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0006")
            for message_id, phone, prices in [
                ("m-it", "+393471234567", [0.035, 0.04]),
                ("m-us", "+14155550123", []),
                ("m-none", None, [0.05]),
            ]:
                conn.execute(insert(messages), [_message_row(message_id, phone)])
                for part, price in enumerate(prices, start=1):
                    conn.execute(insert(events), [_event_row(message_id, part, price)])

        Ledger(engine).migrate()

        found = _destinations(database_url)
        assert found["m-it"][:2] == ("IT", "Vodafone")
        assert round(found["m-it"][2] or 0, 6) == 0.075
        assert found["m-us"] == ("US", None, None)
        assert found["m-none"] == (None, None, 0.05)
    finally:
        engine.dispose()


def _message_row(message_id: str, phone: str | None) -> dict[str, object]:
    return {
        "message_id": message_id,
        "is_final": False,
        "phone": phone,
        "event_count": 1,
        "duplicate_count": 0,
        "first_received_at": T0,
        "updated_at": T0,
    }


def _event_row(message_id: str, part: int, price: float) -> dict[str, object]:
    return {
        "message_id": message_id,
        "status": "delivered",
        "event_time": T0 + timedelta(seconds=part),
        "part": part,
        "total_parts": 2,
        "channel": "sms",
        "shape": "C",
        "price": price,
        "naive_time": False,
        "raw": b"{}",
        "received_at": T0,
        "receipt_id": f"r-{message_id}-{part}",
        "duplicates": 0,
    }
