"""How a message reached its state, told from its stored events.

The state itself is never recomputed here: it is the ledger's, derived by
:func:`qlara.reduce_state`. This module only points at the evidence: the event that set
the status, the copies Qlara sent more than once, the events that arrived out of order, the
read receipt, and for a multi-part SMS what each part's report said.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ledger import EventRecord, MessageDetail
from qlara import PartState, mask_phones, part_states


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
