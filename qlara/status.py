"""The one table of rules: how a set of status events becomes one message state.

The state is a function of the *set* of events, never of their arrival order: it is the
maximum under a total order (see :func:`rank`), which makes folding events in any order, with
any duplicates, give the same answer. The ledger, the metrics and the explorer all use this
module; none re-implements it.
"""

from __future__ import annotations

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


class StatusEvent(Protocol):
    """What the rule needs of an event (``DeliveryEvent`` and ledger rows both fit)."""

    @property
    def status(self) -> str: ...
    @property
    def event_time(self) -> datetime: ...
    @property
    def part(self) -> int: ...
    @property
    def channel(self) -> str | None: ...
    @property
    def customer_message_id(self) -> str | None: ...
    @property
    def phone(self) -> str | None: ...
    @property
    def error(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class MessageState:
    """A message's current state, derived from all its events.

    ``status`` is ``None`` only when the message has nothing but read receipts.
    ``latency_seconds`` is final minus first SENT event time, when both exist.
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

    @property
    def latency_seconds(self) -> float | None:
        """Sent -> final in seconds, from event times; ``None`` until both are known."""
        if self.sent_at is None or self.final_at is None:
            return None
        return (self.final_at - self.sent_at).total_seconds()


def is_final(status: str) -> bool:
    """Whether ``status`` ends a message's delivery (delivered, error, expired)."""
    return status in FINAL_STATUSES


def rank(status: str, event_time: datetime, part: int = 1) -> tuple[bool, datetime, int, str, int]:
    """The total order behind the state: finality, then event time, then precedence.

    The status name and the part number close the order so that no two distinct events tie.
    """
    return (status in FINAL_STATUSES, event_time, PRECEDENCE.get(status, 0), status, part)


def _content(ev: StatusEvent) -> tuple[str, str, str, str]:
    """Closes the order for two reports of the same event that differ in content."""
    return (ev.error or "", ev.channel or "", ev.customer_message_id or "", ev.phone or "")


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

    Raises ``ValueError`` for an empty set.
    """
    evs = list(events)
    if not evs:
        raise ValueError("a message state needs at least one event")
    winner: StatusEvent | None = None
    winner_rank: tuple[bool, datetime, int, str, int] | None = None
    sent_at: datetime | None = None
    read_at: datetime | None = None
    for ev in evs:
        if ev.status == READ:
            if read_at is None or ev.event_time < read_at:
                read_at = ev.event_time
            continue
        if ev.status == "sent" and (sent_at is None or ev.event_time < sent_at):
            sent_at = ev.event_time
        r = rank(ev.status, ev.event_time, ev.part)
        if (
            winner is None
            or winner_rank is None
            or r > winner_rank
            or (r == winner_rank and _content(ev) > _content(winner))
        ):
            winner, winner_rank = ev, r
    final = winner is not None and winner.status in FINAL_STATUSES
    error: str | None = None
    if winner is not None and winner.status in ("error", "expired"):
        error = winner.error
    return MessageState(
        status=winner.status if winner else None,
        status_time=winner.event_time if winner else None,
        is_final=final,
        sent_at=sent_at,
        final_at=winner.event_time if (final and winner is not None) else None,
        read_at=read_at,
        channel=_first_known(evs, "channel"),
        customer_message_id=_first_known(evs, "customer_message_id"),
        phone=_first_known(evs, "phone"),
        error=error,
    )
