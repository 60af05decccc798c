"""A small ledger with a known story, the same on every backend.

Times are counted from :data:`NOW` (2025-03-01 12:00 UTC). Each message is recorded as if
at a chosen moment (its ``updated_at`` and its events' receipt time), so one-hour windows
ending at :data:`NOW` hold exactly what is listed here.

This hour (recorded at 11:30), phones in France (Free Mobile) unless told:
  d1 sms delivered in 10 s (customer message id otp-rossi, phone +39 390 123 4567: Italy,
     3 Italia), price 0.035
  d2 sms delivered in 30 s (UK, no operator), price 0.04
  d3 whatsapp delivered in 20 s (Germany, T-Mobile), then read
  e1 sms error "Blocked by carrier" in 5 s (blocked), price 0.05
  e2 rcs error "Unknown subscriber" in 8 s (invalid_number)
  x1 whatsapp expired after 3600 s  p1 sms sent at 11:29, pending
The hour before (recorded at 10:30):
  q1 sms delivered in 60 s          q2 sms error "Absent subscriber" in 12 s (absent)
Pending from long ago (recorded when sent):
  s1 sms sent 09:00 (stuck: over 1 h)   s2 rcs sent 08:00 (not stuck: under 6 h)
  s3 whatsapp sent 05:00 (stuck: over 6 h)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from ledger.engine import WRITE_OPTION
from ledger.recording import record_receipts
from qlara import DeliveryEvent
from tests.ledger.samples import T0, event, receipt

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
THIS_HOUR = (NOW - timedelta(hours=1), NOW)
HOUR_BEFORE = (NOW - timedelta(hours=2), NOW - timedelta(hours=1))
ROSSI = "+393901234567"
#: The phone of every message not given one: it shares no four digits with the others.
OTHER_PHONE = "+33600000001"
THRESHOLDS = {
    "sms": timedelta(hours=1),
    "rcs": timedelta(hours=6),
    "whatsapp": timedelta(hours=6),
    "other": timedelta(hours=1),
}


def _at(hour: int, minute: int, second: float = 0) -> float:
    """Seconds after T0 (09:00) of ``hour:minute:second`` on the same day."""
    moment = datetime(2025, 3, 1, hour, minute, tzinfo=UTC) + timedelta(seconds=second)
    return (moment - T0).total_seconds()


def _clock(hour: int, minute: int) -> datetime:
    return datetime(2025, 3, 1, hour, minute, tzinfo=UTC)


def record(engine: Engine, when: datetime, *events: DeliveryEvent) -> None:
    """Record ``events`` in one receipt received, and recorded, at ``when``."""
    with engine.execution_options(**{WRITE_OPTION: True}).begin() as conn:
        record_receipts(conn, [receipt(*events, received_at=when)], when)


def delivered(
    message_id: str,
    channel: str,
    sent: float,
    seconds: float,
    price: float | None = None,
    **extra: str,
) -> list[DeliveryEvent]:
    """A message sent at ``sent`` and delivered ``seconds`` later, at ``price``."""
    extra.setdefault("phone", OTHER_PHONE)
    return [
        event(message_id, "sent", sent, channel=channel, **extra),  # type: ignore[arg-type]
        event(message_id, "delivered", sent + seconds, channel=channel, price=price, **extra),  # type: ignore[arg-type]
    ]


def failed(
    message_id: str,
    channel: str,
    sent: float,
    seconds: float,
    status: str,
    error: str | None,
    price: float | None = None,
) -> list[DeliveryEvent]:
    """A message sent at ``sent`` that ended ``status`` with ``error`` ``seconds`` later."""
    return [
        event(message_id, "sent", sent, channel=channel, phone=OTHER_PHONE),
        event(
            message_id,
            status,
            sent + seconds,
            channel=channel,
            error=error,
            phone=OTHER_PHONE,
            price=price,
        ),
    ]


def seed(engine: Engine) -> None:
    """Record the story of the module docstring."""
    this_hour, hour_before = _clock(11, 30), _clock(10, 30)
    record(
        engine,
        this_hour,
        *delivered(
            "d1", "sms", _at(11, 20), 10, 0.035, customer_message_id="otp-rossi", phone=ROSSI
        ),
    )
    record(engine, this_hour, *delivered("d2", "sms", _at(11, 21), 30, 0.04, phone="+441200000002"))
    record(engine, this_hour, *delivered("d3", "whatsapp", _at(11, 22), 20, phone="+491701234567"))
    record(
        engine, this_hour, event("d3", "read", _at(11, 25), channel="whatsapp", phone=OTHER_PHONE)
    )
    record(
        engine, this_hour, *failed("e1", "sms", _at(11, 23), 5, "error", "Blocked by carrier", 0.05)
    )
    record(engine, this_hour, *failed("e2", "rcs", _at(11, 24), 8, "error", "Unknown subscriber"))
    record(engine, this_hour, *failed("x1", "whatsapp", _at(10, 25), 3600, "expired", None))
    record(engine, this_hour, event("p1", "sent", _at(11, 29), channel="sms", phone=OTHER_PHONE))
    record(engine, hour_before, *delivered("q1", "sms", _at(10, 20), 60))
    record(engine, hour_before, *failed("q2", "sms", _at(10, 21), 12, "error", "Absent subscriber"))
    record(engine, _clock(9, 0), event("s1", "sent", _at(9, 0), channel="sms", phone=OTHER_PHONE))
    record(engine, _clock(8, 0), event("s2", "sent", _at(8, 0), channel="rcs", phone=OTHER_PHONE))
    record(
        engine, _clock(5, 0), event("s3", "sent", _at(5, 0), channel="whatsapp", phone=OTHER_PHONE)
    )
