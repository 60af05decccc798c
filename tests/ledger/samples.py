"""Building events, replies and receipts for ledger tests, with sensible defaults."""

from __future__ import annotations

import itertools
import json
import time
from datetime import UTC, datetime, timedelta

from qlara import DeliveryEvent, InboundMessage, Receipt, Shape

#: The instant event offsets are counted from.
T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)

PHONE = "+393901234567"

_receipt_ids = itertools.count(1)


def event(
    message_id: str = "m-1",
    status: str = "sent",
    at: float = 0,
    *,
    part: int = 1,
    total_parts: int = 1,
    channel: str | None = "sms",
    phone: str | None = PHONE,
    customer_message_id: str | None = None,
    error: str | None = None,
    price: float | None = None,
    shape: Shape = Shape.GUIDE,
) -> DeliveryEvent:
    """A status event ``at`` seconds after :data:`T0`."""
    event_time = T0 + timedelta(seconds=at)
    raw = json.dumps(
        {
            "messageId": message_id,
            "status": status.upper(),
            "timestamp": event_time.isoformat(),
            "part": part,
            "channel": channel,
        },
        sort_keys=True,
    ).encode()
    return DeliveryEvent(
        message_id=message_id,
        status=status,
        event_time=event_time,
        shape=shape,
        raw=raw,
        channel=channel,
        customer_message_id=customer_message_id,
        phone=phone,
        error=error,
        part=part,
        total_parts=total_parts,
        price=price,
    )


def reply(inbound_id: str = "in-1", text: str = "STOP", at: float = 0) -> InboundMessage:
    """An inbound reply ``at`` seconds after :data:`T0`."""
    return InboundMessage(
        inbound_id=inbound_id,
        event_time=T0 + timedelta(seconds=at),
        raw=json.dumps({"eventType": "INBOUND", "messageId": inbound_id, "text": text}).encode(),
        channel="whatsapp",
        source=PHONE,
        destination="+390200000000",
        text=text,
        message_type="TEXT",
    )


def receipt(
    *events: DeliveryEvent,
    inbound: tuple[InboundMessage, ...] = (),
    receipt_id: str | None = None,
    received_at: datetime | None = None,
) -> Receipt:
    """A receipt of ``events`` under a fresh id, received now unless told otherwise."""
    return Receipt(
        receipt_id=receipt_id or f"r-{next(_receipt_ids)}-{time.monotonic_ns()}",
        received_at=time.time() if received_at is None else received_at.timestamp(),
        events=events,
        inbound=inbound,
    )
