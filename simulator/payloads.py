"""The bodies Qlara posts, in its three documented payload shapes, for both generators.

One builder per shape, so that what the live traffic and the planned traffic post is the same
JSON (keys in the same order) and a change to Qlara's documented fields is made once. A
builder takes the timestamp already written: the live traffic writes milliseconds, the plan
whatever its datetimes hold, and each generator's output for a seed stays what it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

SHAPES: tuple[str, ...] = ("A", "B", "C")
"""The documented payload shapes: A the Webhooks guide, B the platform, C SMS Universal."""

SIM_CHANNELS: tuple[str, ...] = ("sms", "rcs", "whatsapp")
"""The channels the simulation sends on (as the parser names them, lower-case)."""

#: Error texts per channel, of the kind operators see in failure reports.
ERROR_TEXTS: dict[str, tuple[str, ...]] = {
    "sms": (
        "Invalid destination number",
        "Number not reachable",
        "Subscriber absent",
        "Blocked by carrier",
        "Rejected by operator",
        "Handset memory full",
    ),
    "rcs": (
        "RCS not supported by the recipient's device",
        "RCS agent not launched on the recipient's carrier",
        "Recipient not reachable",
    ),
    "whatsapp": (
        "Recipient is not a WhatsApp user",
        "Message outside the 24-hour customer service window",
        "Message undeliverable",
        "Template paused for low quality",
    ),
}

#: The error text of a message whose validity period ran out.
EXPIRED_TEXT = "Validity period expired"


@dataclass(frozen=True, slots=True)
class Message:
    """What every event of one message repeats: its ids, shape, channel and recipient."""

    message_id: str
    shape: str
    channel: str
    phone: str
    reference: str  #: the application's own id, Qlara's ``customerMessageId``


def qlara_time(when: datetime, timespec: str = "auto") -> str:
    """``when`` (UTC) as Qlara writes a timestamp: ISO 8601 with a ``Z``."""
    return when.isoformat(timespec=timespec).replace("+00:00", "Z")


def shape_a(m: Message, status: str, stamp: str, error: str | None) -> dict[str, Any]:
    """An event of the Webhooks guide: every status by name, an error text beside it."""
    return {
        "messageId": m.message_id,
        "customerMessageId": m.reference,
        "phoneNumber": m.phone,
        "status": status.upper(),
        "timestamp": stamp,
        "channel": m.channel,
        "error": error,
    }


def shape_b(m: Message, status: str, stamp: str, error: str | None) -> dict[str, Any]:
    """An event of the platform guide: a read receipt, or a delivery with a status code.

    The platform shape has codes 3 (delivered) and 6 (failed) only: any other final status is
    a failure whose description says why.
    """
    if status == "read":
        return {
            "eventType": "READ",
            "messageId": m.message_id,
            "destination": m.phone,
            "channel": m.channel.upper(),
            "timestamp": stamp,
        }
    return {
        "eventType": "DELIVERY",
        "messageId": m.message_id,
        "customerMessageId": m.reference,
        "destination": m.phone,
        "statusCode": 3 if status == "delivered" else 6,
        "description": error or "Message delivered",
        "channel": m.channel.upper(),
        "timestamp": stamp,
    }


def shape_c(
    m: Message, status: str, stamp: str, part: int, parts: int, error: str | None = None
) -> dict[str, Any]:
    """One part's delivery of the SMS Universal callback (SMS only, codes 3 and 6 as in B)."""
    return {
        "channel": "SMS",
        "eventType": "DELIVERY",
        "messageId": m.message_id,
        "statusCode": 3 if status == "delivered" else 6,
        "statusDescription": error or "Delivered",
        "price": 0.035,
        "numPart": part,
        "totalParts": parts,
        "timestamp": stamp,
    }


def delivered_or_error(status: str) -> str:
    """The status a shape B or C event reads as: those shapes know no expiry."""
    return "delivered" if status == "delivered" else "error"
