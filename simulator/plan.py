"""Realistic Qlara webhook traffic, and exactly what a correct recorder must make of it.

:func:`plan_traffic` draws messages over the documented payload shapes and channels, gives each
its events (SENT then a final status, read receipts for WhatsApp and RCS, one notification per
part for multi-part SMS), then applies what Qlara's delivery allows: duplicates (an identical
request sent again) and reordering (a message's events posted in reverse). Some requests carry
a JSON array of events. The plan records, per message, what its recorded state must be, so a
test or a demo can check the recorder exactly.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from simulator import payloads
from simulator.payloads import (
    EXPIRED_TEXT,
    SHAPES,
    SIM_CHANNELS,
    Message,
    qlara_time,
    shape_a,
    shape_b,
    shape_c,
)

#: The SMS error texts in the order the plan draws from: the order decides which text a seed
#: gives, so it stays the plan's own while the texts themselves are the simulator's.
_ERROR_TEXTS = tuple(payloads.ERROR_TEXTS["sms"][i] for i in (0, 1, 3, 2, 4, 5))


@dataclass(frozen=True, slots=True)
class PlannedMessage:
    """What the ledger must show for one message once all its requests are recorded."""

    message_id: str
    channel: str
    shape: str
    final_status: str
    events: int  #: unique status events (read receipts and parts included)
    duplicates: int  #: requests resent with an identical body
    read: bool


@dataclass(slots=True)
class TrafficPlan:
    """Request bodies in posting order, and the expected outcome."""

    bodies: list[bytes] = field(default_factory=list)
    messages: dict[str, PlannedMessage] = field(default_factory=dict)
    unique_events: int = 0
    duplicate_events: int = 0
    inbound: int = 0
    duplicate_inbound: int = 0
    reordered_messages: int = 0


def plan_traffic(
    *,
    events: int,
    seed: int = 0,
    shapes: Sequence[str] = SHAPES,
    channels: Sequence[str] = SIM_CHANNELS,
    duplicates: float = 0.05,
    reorder: float = 0.05,
    batch_share: float = 0.1,
    inbound_share: float = 0.0,
    start: datetime | None = None,
) -> TrafficPlan:
    """Plan about ``events`` unique status events (at least that many, message by message).

    ``duplicates`` is the share of requests sent twice, ``reorder`` the share of messages
    whose events are posted last-first, ``batch_share`` the share of requests that carry a
    JSON array of several messages' events, ``inbound_share`` the share of messages that get
    a reply from their recipient (an INBOUND event, not a status). Same arguments, same plan.
    """
    rnd = random.Random(seed)  # noqa: S311 - reproducible traffic, not cryptography
    base = start or datetime(2025, 4, 8, 14, 0, tzinfo=UTC)
    plan = TrafficPlan()
    per_message: list[list[dict[str, Any]]] = []
    n = 0
    while plan.unique_events < events:
        n += 1
        shape = rnd.choice(list(shapes))
        channel = "sms" if shape == "C" else rnd.choice(list(channels))
        mid = f"m-{seed}-{n:06d}"
        phone = f"+39{rnd.randrange(3_000_000_000, 3_999_999_999)}"
        message = Message(mid, shape, channel, phone, reference=f"order-{seed}-{n}")
        sent_at = base + timedelta(seconds=n)
        final_at = sent_at + timedelta(seconds=rnd.lognormvariate(2.0, 1.0))
        outcome = rnd.choices(["delivered", "error", "expired"], weights=[85, 10, 5])[0]
        error = rnd.choice(_ERROR_TEXTS) if outcome == "error" else None
        items: list[dict[str, Any]] = []
        read = False
        if shape == "A":
            items.append(shape_a(message, "sent", qlara_time(sent_at), None))
            text = error or (EXPIRED_TEXT if outcome == "expired" else None)
            items.append(shape_a(message, outcome, qlara_time(final_at), text))
        elif shape == "B":
            outcome = "error" if outcome == "expired" else outcome
            error = error or (None if outcome == "delivered" else _ERROR_TEXTS[0])
            items.append(shape_b(message, outcome, qlara_time(final_at), error))
            if outcome == "delivered" and channel in ("rcs", "whatsapp") and rnd.random() < 0.5:
                read = True
                read_at = final_at + timedelta(seconds=30)
                items.append(shape_b(message, "read", qlara_time(read_at), None))
        else:
            outcome = "delivered"
            parts = rnd.choice([1, 1, 2, 3])
            for part in range(1, parts + 1):
                part_at = final_at + timedelta(seconds=part)
                items.append(shape_c(message, "delivered", qlara_time(part_at), part, parts))
        if rnd.random() < inbound_share:
            plan.inbound += 1
            per_message.append(
                [
                    {
                        "eventType": "INBOUND",
                        "messageId": f"in-{mid}",
                        "source": phone,
                        "destination": "+390299999999",
                        "text": "STOP",
                        "channel": channel.upper(),
                        "messageType": "TEXT",
                        "timestamp": (final_at + timedelta(minutes=1)).isoformat(),
                    }
                ]
            )
        if rnd.random() < reorder and len(items) > 1:
            items.reverse()
            plan.reordered_messages += 1
        per_message.append(items)
        plan.messages[mid] = PlannedMessage(mid, channel, shape, outcome, len(items), 0, read)
        plan.unique_events += len(items)

    # Post in time order across messages, some requests as arrays of several events.
    queue = [item for items in per_message for item in items]
    bodies: list[tuple[bytes, list[str]]] = []
    i = 0
    while i < len(queue):
        if rnd.random() < batch_share and i + 1 < len(queue):
            size = rnd.randint(2, 5)
            chunk = queue[i : i + size]
            bodies.append((msgspec.json.encode(chunk), [c["messageId"] for c in chunk]))
            i += len(chunk)
        else:
            bodies.append((msgspec.json.encode(queue[i]), [queue[i]["messageId"]]))
            i += 1
    keyed: list[tuple[float, bytes]] = []
    dup_count: dict[str, int] = {}
    for position, (body, mids) in enumerate(bodies):
        keyed.append((float(position), body))
        if rnd.random() < duplicates:
            # Qlara resends later: the copy lands up to 20 requests after the original.
            keyed.append((position + rnd.uniform(0.5, 20.0), body))
            plan.duplicate_events += sum(1 for mid in mids if not mid.startswith("in-"))
            plan.duplicate_inbound += sum(1 for mid in mids if mid.startswith("in-"))
            for mid in mids:
                dup_count[mid] = dup_count.get(mid, 0) + 1
    keyed.sort(key=lambda pair: pair[0])
    plan.bodies = [body for _, body in keyed]
    for mid, extra in dup_count.items():
        if mid not in plan.messages:
            continue
        m = plan.messages[mid]
        plan.messages[mid] = PlannedMessage(
            m.message_id, m.channel, m.shape, m.final_status, m.events, extra, m.read
        )
    return plan
