"""The one table of rules: how a set of status events becomes one message state.

The state is a function of the *set* of events, never of their arrival order: each part's
state is the maximum of its events under a total order (see :func:`rank`), and the message's
state is derived from its parts' states, which makes folding events in any order, with any
duplicates, give the same answer. The ledger, the metrics and the explorer all use this
module; none re-implements it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

#: Statuses after which Qlara reports nothing more about delivery.
FINAL_STATUSES: frozenset[str] = frozenset({"delivered", "error", "expired"})

#: The read receipt: sets ``read_at``, never the delivery status.
READ = "read"

#: Tie-breakers for events with the same finality and event time (higher wins).
#: Statuses not listed (new ones Qlara may add) rank below every listed one, and among
#: themselves by name, so the order stays total.
PRECEDENCE: dict[str, int] = {
    # finals: a handset confirmation beats a failure reported at the same instant
    "delivered": 30,
    "error": 20,
    "expired": 10,
    # intermediates: the further along, the higher
    "received": 3,
    "sent": 2,
    "unknown": 1,
}

#: How a final status names the outcome of a message (for latency and failure metrics).
OUTCOMES: frozenset[str] = FINAL_STATUSES


class PartEvent(Protocol):
    """What the per-part rule needs of an event (``DeliveryEvent`` and stored events fit)."""

    @property
    def status(self) -> str: ...
    @property
    def event_time(self) -> datetime: ...
    @property
    def part(self) -> int: ...
    @property
    def total_parts(self) -> int: ...
    @property
    def channel(self) -> str | None: ...
    @property
    def error(self) -> str | None: ...


class StatusEvent(PartEvent, Protocol):
    """What the whole rule needs of an event (``DeliveryEvent`` and ledger rows both fit)."""

    @property
    def customer_message_id(self) -> str | None: ...
    @property
    def phone(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class MessageState:
    """A message's current state, derived from all its events.

    ``status`` is ``None`` only when the message has nothing but read receipts.
    ``latency_seconds`` is final minus first SENT event time, when both exist and the final
    status came from Qlara's webhook: ``final_polled`` says it was learnt by polling, when
    the time is the poll's, not the delivery's, and no latency is measured.
    """

    status: str | None
    status_time: datetime | None
    is_final: bool
    sent_at: datetime | None
    final_at: datetime | None
    read_at: datetime | None
    channel: str | None
    customer_message_id: str | None
    phone: str | None
    error: str | None
    final_polled: bool = False

    @property
    def latency_seconds(self) -> float | None:
        """Sent -> final in seconds, from event times; ``None`` until both are known, and
        when the final status was polled (its time is the poll's)."""
        if self.sent_at is None or self.final_at is None or self.final_polled:
            return None
        return (self.final_at - self.sent_at).total_seconds()


def is_final(status: str) -> bool:
    """Whether ``status`` ends a message's delivery (delivered, error, expired)."""
    return status in FINAL_STATUSES


#: The source of a status the reconciler polled from Qlara's API (see :class:`qlara.Source`).
POLLED = "poll"


def rank(
    status: str, event_time: datetime, part: int = 1, polled: bool = False
) -> tuple[bool, bool, datetime, int, str, int]:
    """The total order behind the state: finality, then what Qlara's webhook reported over
    what was polled, then event time, then precedence.

    A polled status has no event time to trust (it is timed at the poll), so it never
    overturns a status of the same finality the webhook reported, and a webhook report that
    arrives later, with its real time, takes its place. The status name and the part number
    close the order so that no two distinct events tie.
    """
    final = status in FINAL_STATUSES
    return (final, not polled, event_time, PRECEDENCE.get(status, 0), status, part)


def _polled(ev: PartEvent) -> bool:
    return getattr(ev, "source", None) == POLLED


def _content(ev: PartEvent) -> tuple[str, str, str, str]:
    """Closes the order for two reports of the same event that differ in content."""
    return (
        ev.error or "",
        ev.channel or "",
        getattr(ev, "customer_message_id", None) or "",
        getattr(ev, "phone", None) or "",
    )


def _key(
    ev: PartEvent,
) -> tuple[tuple[bool, bool, datetime, int, str, int], tuple[str, str, str, str]]:
    return rank(ev.status, ev.event_time, ev.part, _polled(ev)), _content(ev)


@dataclass(frozen=True, slots=True)
class PartState:
    """One part of a message: its deciding event, or ``None`` when no report of the part
    has arrived (Qlara numbers the parts of a multi-part SMS from 1 to ``totalParts``)."""

    part: int
    total_parts: int
    event: PartEvent | None

    @property
    def status(self) -> str | None:
        return self.event.status if self.event is not None else None

    @property
    def is_final(self) -> bool:
        return self.event is not None and self.event.status in FINAL_STATUSES


#: The most parts a concatenated SMS can have (an 8-bit reference, 255 parts at most).
MAX_PARTS = 255


def part_states(events: Iterable[PartEvent]) -> list[PartState]:
    """Each part's state, parts 1 to the highest ``totalParts`` (or part) reported.

    A part's deciding event is its highest under :func:`rank` (finals first, then the latest,
    then precedence), as for a whole single-part message. Read receipts do not count. A part
    number below 1 (implausible, kept as sent) is read as part 1. Above :data:`MAX_PARTS`
    (implausible too: a ``totalParts`` of two billion must not cost two billion states), only
    the parts reported are listed, and the first part missing among them, which keeps the
    message from being final as the full list would.
    """
    best: dict[int, PartEvent] = {}
    total = 1
    for ev in events:
        if ev.status == READ:
            continue
        number = max(ev.part, 1)
        total = max(total, ev.total_parts, number)
        held = best.get(number)
        if held is None or _key(ev) > _key(held):
            best[number] = ev
    if total <= MAX_PARTS:
        return [PartState(part, total, best.get(part)) for part in range(1, total + 1)]
    listed = set(range(1, MAX_PARTS + 1)) | best.keys()
    if len(listed) < total:
        listed.add(next(n for n in itertools.count(MAX_PARTS + 1) if n not in best))
    return [PartState(part, total, best.get(part)) for part in sorted(listed)]


def _decide(
    parts: list[PartState], evs: list[StatusEvent]
) -> tuple[str | None, datetime | None, datetime | None, str | None, bool]:
    """(status, status time, final time, error, final polled) of a message whose parts are
    ``parts``."""
    decided = [p.event for p in parts if p.event is not None]
    if not decided:  # read receipts only
        return None, None, None, None, False
    if all(p.is_final for p in parts):
        failed = [e for e in decided if e.status != "delivered"]
        winner = max(failed or decided, key=_key)
        final_at = max(e.event_time for e in decided)
        error = winner.error if failed else None
        return winner.status, winner.event_time, final_at, error, any(map(_polled, decided))
    if len(parts) == 1:
        return decided[0].status, decided[0].event_time, None, None, False
    in_flight = [e for e in evs if e.status != READ and e.status not in FINAL_STATUSES]
    if in_flight:
        winner = max(in_flight, key=_key)
        return winner.status, winner.event_time, None, None, False
    return "sent", min(e.event_time for e in decided), None, None, False


def _first_known(events: list[StatusEvent], attr: str) -> str | None:
    """The value of ``attr`` on the earliest event that has one (order-independent)."""
    best: tuple[datetime, str, int] | None = None
    value: str | None = None
    for ev in events:
        v = getattr(ev, attr)
        if v is None:
            continue
        key = (ev.event_time, ev.status, ev.part)
        if best is None or key < best or (key == best and value is not None and v < value):
            best, value = key, v
    return value


def reduce_state(events: Iterable[StatusEvent]) -> MessageState:
    """Derive a message's state from its events, whatever their order or duplication.

    - Final statuses (delivered, error, expired) outrank intermediate ones (sent, received,
      unknown, and any status Qlara may add).
    - Among events of the same finality, the latest event time wins; ties are broken by
      :data:`PRECEDENCE`.
    - ``read`` sets ``read_at`` (the earliest read) and never changes the status.
    - A status polled from Qlara's API ranks below the webhook's of the same finality (see
      :func:`rank`); a final status learnt only by polling gives no latency.
    - A multi-part SMS (``totalParts`` > 1) is decided part by part (:func:`part_states`).
      It is final only once every part is, and delivered only when every part was;
      otherwise its status, time and error are those of its failed part (the latest, by
      the same order). Until every part is final it is in flight: its status is the
      furthest intermediate one reported, or ``sent`` when only some parts' final reports
      have arrived, timed at its earliest report.

    Raises ``ValueError`` for an empty set.
    """
    evs = list(events)
    if not evs:
        raise ValueError("a message state needs at least one event")
    sent_at: datetime | None = None
    read_at: datetime | None = None
    for ev in evs:
        if ev.status == READ:
            if read_at is None or ev.event_time < read_at:
                read_at = ev.event_time
        elif ev.status == "sent" and (sent_at is None or ev.event_time < sent_at):
            sent_at = ev.event_time
    status, status_time, final_at, error, final_polled = _decide(part_states(evs), evs)
    return MessageState(
        status=status,
        status_time=status_time,
        is_final=final_at is not None,
        sent_at=sent_at,
        final_at=final_at,
        read_at=read_at,
        channel=_first_known(evs, "channel"),
        customer_message_id=_first_known(evs, "customer_message_id"),
        phone=_first_known(evs, "phone"),
        error=error,
        final_polled=final_polled,
    )
