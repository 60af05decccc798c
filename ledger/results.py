"""The values the ledger returns. All frozen; every datetime is timezone-aware UTC."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from qlara import DeliveryEvent, Shape


@dataclass(frozen=True, slots=True)
class LatencyObservation:
    """A message's sent -> final latency, reported the first time both are known, never again.

    ``outcome`` is the final status (delivered, error, expired); ``seconds`` is measured
    between the event times Qlara reported; ``country`` is the destination's
    (:func:`qlara.destination`), ``None`` when the phone is not known.
    """

    channel: str | None
    outcome: str
    seconds: float
    country: str | None = None


@dataclass(frozen=True, slots=True)
class RecordResult:
    """What recording one receipt changed.

    ``already_recorded`` means the receipt id had been recorded before and nothing changed
    (every other field is then empty). ``duplicate_events`` lists events already stored (sent
    again by Qlara, or twice in this receipt); they only raised duplicate counts.
    """

    already_recorded: bool
    new_events: list[DeliveryEvent]
    duplicate_events: list[DeliveryEvent]
    new_inbound: int
    duplicate_inbound: int
    latencies: list[LatencyObservation]


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One stored status event. ``duplicates`` counts the extra times it arrived;
    ``received_at`` is when the receipt that first carried it was accepted."""

    status: str
    status_code: int | None
    event_time: datetime
    received_at: datetime
    channel: str | None
    part: int
    total_parts: int
    error: str | None
    shape: Shape
    price: float | None
    duplicates: int
    naive_time: bool
    raw: bytes
    time_from_receipt: bool = False
    #: Who reported it (:class:`qlara.Source`): ``webhook``, ``app`` (a send the application
    #: reported) or ``poll`` (the reconciler asked Qlara's status API).
    source: str = "webhook"


@dataclass(frozen=True, slots=True)
class MessageSummary:
    """A message's state as derived by :func:`qlara.reduce_state` from all its stored events.

    ``event_count`` counts distinct events, ``duplicate_count`` the extra copies received.
    ``first_received_at`` is when its first event was accepted; ``updated_at`` when a new
    event last changed its record (duplicates do not move it).
    """

    message_id: str
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
    latency_seconds: float | None
    event_count: int
    duplicate_count: int
    first_received_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class MessageDetail(MessageSummary):
    """A message with its events, ordered by event time, then status precedence, then part."""

    events: list[EventRecord]


@dataclass(frozen=True, slots=True)
class MessagePage:
    """One page of messages, newest update first; ``next_cursor`` is ``None`` on the last."""

    items: list[MessageSummary]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class WebhookStats:
    """How the webhook traffic looks now.

    - ``last_event_at``: per channel, when its latest stored event from Qlara was received;
      events without a channel are counted under ``"other"`` (Qlara documents no channel of
      that name).
    - ``events_last_5m``/``15m``/``60m``: distinct events from Qlara received in the window
      before ``now`` (by receipt time; duplicates not counted). The application's sends
      count in neither: they would hide the webhook's silence.
    - ``pending``: messages with a sent event and no final status;
      ``oldest_pending_age_seconds`` is ``now`` minus the oldest such sent time.
    - ``events_total``, ``duplicates_total`` (extra copies of status events),
      ``inbound_total``: what the ledger holds now.
    - ``filled_by_polling_total``: events the reconciler recorded from Qlara's status API
      (``source`` = ``poll``): final statuses the webhook never delivered.
    """

    last_event_at: dict[str, datetime]
    events_last_5m: int
    events_last_15m: int
    events_last_60m: int
    pending: int
    oldest_pending_age_seconds: float | None
    events_total: int
    duplicates_total: int
    inbound_total: int
    filled_by_polling_total: int


@dataclass(frozen=True, slots=True)
class Backlog:
    """What is waiting now, for the scrape-time metrics.

    ``pending`` maps each channel (``None``: events without one) to how many of its messages
    were sent and have no final status yet, and when the oldest of them was sent;
    ``dead_letters`` counts dead letters not yet redriven. With an expiry horizon given,
    ``pending`` holds only the messages sent within it, and ``unresolved`` counts, by
    channel, those sent before it that never got a final status (Qlara will send none now).
    """

    pending: dict[str | None, tuple[int, datetime]]
    dead_letters: int
    unresolved: dict[str | None, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A receipt the workers gave up on. ``payload`` is the encoded receipt, ``attempts`` how
    many times it was tried; ``redriven_at`` is set once it has been sent back for another try."""

    id: int
    receipt_id: str | None
    payload: str
    reason: str
    attempts: int
    failed_at: datetime
    redriven_at: datetime | None


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """How many rows :meth:`Ledger.purge` deleted, per kind."""

    events: int
    messages: int
    inbound: int
    receipts: int
    dead_letters: int


@dataclass(frozen=True, slots=True)
class LedgerCounts:
    """Row counts: distinct events, messages, inbound replies, receipts and dead letters;
    ``duplicates`` and ``inbound_duplicates`` sum the extra copies received."""

    events: int
    messages: int
    inbound: int
    duplicates: int
    inbound_duplicates: int
    receipts: int
    dead_letters: int
