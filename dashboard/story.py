"""How a message reached its state, told from its stored events.

The state itself is never recomputed here: it is the ledger's, derived by
:func:`qlara.reduce_state`. This module only points at the evidence: the event that set
the status, the copies Qlara sent more than once, the events that arrived out of order, the
read receipt, and for a multi-part SMS what each part's report said.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dashboard.show import seconds
from ledger import EventRecord, MessageDetail
from qlara import PartState, mask_phone, mask_phones, part_states


@dataclass(frozen=True, slots=True)
class Story:
    """The evidence behind a message's state.

    - ``deciding``: the event whose status and time the message has (``None`` when only
      read receipts arrived);
    - ``duplicates``: extra copies received, over all events;
    - ``late``: events received after an event that happened later than they did (Qlara
      reported them out of order), in receipt order;
    - ``read_at``: when it was first read, if ever;
    - ``parts``: each part's state (one for a message that is not a multi-part SMS).
    """

    deciding: EventRecord | None
    duplicates: int
    late: list[EventRecord]
    read_at: datetime | None
    parts: list[PartState]

    def sentences(self) -> list[str]:
        """The story in a few plain sentences, for people."""
        told: list[str] = []
        waiting = [p.part for p in self.parts if not p.is_final]
        if not any(p.event is not None for p in self.parts):
            told.append("Only read receipts arrived: the message has no delivery status.")
        elif self.deciding is None:
            told.append(
                "Sent: some parts have their final report, and the message is final only "
                "once every part has."
            )
        else:
            told.append(
                f"The status {self.deciding.status} comes from the event of "
                f"{self.deciding.event_time:%Y-%m-%d %H:%M:%S} UTC (part "
                f"{self.deciding.part} of {self.deciding.total_parts})."
            )
        if len(self.parts) > 1:
            told.append(
                "Parts: "
                + "; ".join(_part_text(p) for p in self.parts)
                + (
                    f". Waiting for part {', '.join(map(str, waiting))}."
                    if waiting
                    else ". Delivered only if every part was."
                )
            )
        if self.duplicates:
            told.append(f"Qlara sent {self.duplicates} extra copies; each was counted once.")
        if self.late:
            names = ", ".join(e.status for e in self.late)
            told.append(
                f"Arrived out of order: {names}. The state is a function of the events, "
                "not of their order, so it is the same either way."
            )
        if self.read_at is not None:
            told.append(f"Read at {self.read_at:%Y-%m-%d %H:%M:%S} UTC.")
        return told


def headline(message: MessageDetail, now: datetime) -> str:
    """What happened to ``message``, in one sentence a support person can read out: "Delivered
    to +39******4567 at 10:00:04 UTC, 4 s after it was sent; read at 10:01." Phones masked;
    the day is named when it is not ``now``'s."""
    to = f" to {mask_phone(message.phone)}" if message.phone else ""

    def at(moment: datetime | None) -> str:
        if moment is None:
            return ""
        day = "" if moment.date() == now.date() else f" on {moment:%d %b %Y}"
        return f" at {moment:%H:%M:%S} UTC{day}"

    after = (
        f", {seconds(message.latency_seconds)} after it was sent"
        if message.latency_seconds is not None
        else ""
    )
    polled = any(e.source == "poll" and e.status == message.status for e in message.events)
    source = " (learnt by polling Qlara: the webhook never said)" if polled else ""
    if message.status == "delivered":
        told = f"Delivered{to}{at(message.final_at)}{after}{source}"
    elif message.status == "error":
        why = f": {mask_phones(message.error)}" if message.error else ""
        told = f"Not delivered{to}{why}; Qlara said so{at(message.final_at)}{after}{source}"
    elif message.status == "expired":
        told = (
            f"Expired{to}{at(message.final_at)}{after}: Qlara could not deliver it in time{source}"
        )
    elif message.sent_at is not None:
        waited = seconds((now - message.sent_at).total_seconds())
        told = f"Sent{to}{at(message.sent_at)}, {waited} ago; no final status yet"
        if message.status not in (None, "sent"):
            told += f" (last: {message.status}{at(message.status_time)})"
    elif message.status is not None:
        told = f"Last heard of as {message.status}{at(message.status_time)}; no send is known"
    else:
        told = "Only read receipts arrived: the message has no delivery status"
    if message.read_at is not None:
        told += f"; read{at(message.read_at)}"
    return told + "."


def tell(message: MessageDetail) -> Story:
    """The evidence behind ``message``'s state (see :class:`Story`)."""
    deciding = next(
        (
            e
            for e in reversed(message.events)
            if e.status == message.status and e.event_time == message.status_time
        ),
        None,
    )
    late: list[EventRecord] = []
    latest_time = None
    for record in sorted(message.events, key=lambda e: (e.received_at, e.event_time)):
        if latest_time is not None and record.event_time < latest_time:
            late.append(record)
        latest_time = (
            record.event_time if latest_time is None else max(latest_time, record.event_time)
        )
    return Story(
        deciding=deciding,
        duplicates=sum(e.duplicates for e in message.events),
        late=late,
        read_at=message.read_at,
        parts=part_states(message.events),
    )


def _part_text(part: PartState) -> str:
    event = part.event
    if event is None:
        return f"{part.part} of {part.total_parts} no report yet"
    text = f"{part.part} of {part.total_parts} {event.status} at {event.event_time:%H:%M:%S}"
    return f"{text} ({mask_phones(event.error)})" if event.error else text
