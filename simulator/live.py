"""Live Qlara webhook traffic: timed requests paced like Qlara's.

:func:`live_traffic` yields :class:`TimedRequest` values in posting order, each with the
second (after the start) at which Qlara would post it. Messages start at a pace that makes
about ``rate`` status events a second. Each message, in one of the three documented payload
shapes, gets its events:

- shape A (the Webhooks guide): ``SENT`` at once, then a final status (``DELIVERED``,
  ``ERROR`` with an error text, or ``EXPIRED`` when the validity period runs out);
- shape B (the platform guide): a ``DELIVERY`` with ``statusCode`` 3 or 6, and for some
  delivered WhatsApp and RCS messages a ``READ`` later on;
- shape C (the SMS Universal callback): one ``DELIVERY`` per part of a multi-part SMS.

A final status follows after a lognormal delay whose median depends on the channel
(:data:`CHANNEL_DELAYS`, in Qlara's real seconds), multiplied by ``time_scale`` so that a demo
need not wait for real delivery times. Then what Qlara's delivery allows is applied:
duplicates (a request posted again a little later, unchanged), reordering (a message's first
event posted after its last one, as when Qlara's retry of it lands late), JSON arrays of
several events, and error bursts (a window in which most finals are errors).

What was acknowledged of it is counted by :class:`simulator.summary.TrafficSummary`.

Same options, same seed and same ``start``: the same requests, byte for byte.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NamedTuple

import msgspec

from simulator.payloads import (
    ERROR_TEXTS,
    EXPIRED_TEXT,
    SHAPES,
    SIM_CHANNELS,
    Message,
    delivered_or_error,
    qlara_time,
    shape_a,
    shape_b,
    shape_c,
)


@dataclass(frozen=True, slots=True)
class ChannelDelay:
    """Lognormal delay from sending to the final status, in Qlara's real seconds."""

    median_s: float
    sigma: float


#: Delay from send to final status per channel; a delivered SMS takes a few seconds, an
#: over-the-top message less, and a few take far longer (the lognormal's long tail).
CHANNEL_DELAYS: dict[str, ChannelDelay] = {
    "sms": ChannelDelay(median_s=6.0, sigma=0.9),
    "rcs": ChannelDelay(median_s=3.0, sigma=0.8),
    "whatsapp": ChannelDelay(median_s=2.0, sigma=0.7),
}

#: Validity period, in Qlara's real seconds: a message not delivered by then expires. A
#: quarter of an hour is the usual validity of one-time passwords.
VALIDITY_S = 900.0

#: Delay from delivery to the read receipt, in Qlara's real seconds.
READ_DELAY = ChannelDelay(median_s=40.0, sigma=1.2)

#: The usual mix of final outcomes outside an error burst: delivered, error, expired.
OUTCOME_WEIGHTS: tuple[float, float, float] = (90.0, 7.0, 3.0)

_PARTS = (1, 1, 1, 2, 3)
#: Qlara posts a resent request a few real seconds to a minute after the first.
_RESEND_DELAY_S = (2.0, 60.0)
#: How long, in Qlara's real seconds, a request of several events may wait for its last one.
_BATCH_WINDOW_S = 2.0


class EventKey(NamedTuple):
    """What makes a status event unique in the ledger."""

    message_id: str
    status: str
    event_time: datetime
    part: int


@dataclass(frozen=True, slots=True)
class SimEvent:
    """One status event of a request, as the sidecar will read it."""

    key: EventKey
    channel: str
    shape: str


#: Where a request goes: Qlara's webhook, the sidecar's ``POST /v1/sends`` (the application
#: reporting what it sent), or a fake Qlara's ``POST /_fake/messages`` (what Qlara knows of
#: a message whose final webhook was dropped).
Target = Literal["webhook", "sends", "qlara"]


@dataclass(frozen=True, slots=True)
class TimedRequest:
    """One request: when to post it, where, its body, and the events it carries.

    ``at`` is in seconds after the start of the traffic (``time_scale`` already applied);
    ``resend`` says the body was posted before, unchanged.
    """

    at: float
    body: bytes
    events: tuple[SimEvent, ...]
    resend: bool = False
    target: Target = "webhook"


@dataclass(frozen=True, slots=True)
class ErrorBurst:
    """A window, in seconds after the start, in which ``share`` of the finals are errors."""

    at_s: float
    length_s: float
    share: float = 0.8

    def covers(self, t: float) -> bool:
        """Whether ``t`` (seconds after the start) falls inside the burst."""
        return self.at_s <= t < self.at_s + self.length_s


@dataclass(frozen=True, slots=True)
class TrafficOptions:
    """What traffic to make. Raises ``ValueError`` from the constructor for a bad value.

    ``rate`` is status events per second (resends come on top); ``messages`` stops the
    traffic after that many messages and their events (``None``: endless); ``duplicates`` is
    the share of requests posted twice, ``reorder`` the share of messages (of two events or
    more) whose first event is posted after their last, ``batch_share`` the share of requests
    that carry a JSON array. ``time_scale`` multiplies every delay (1: Qlara's real delays).
    ``start`` is the wall-clock time of second 0, written in the events' timestamps.
    ``report_sends`` adds, for every message, the send the application reports to
    ``/v1/sends`` (both ids, channel, phone, ``sentAt``) when it submits it; ``drop`` is the
    share of messages whose final-status webhooks Qlara never posts: their truth goes to the
    fake Qlara instead (a ``qlara`` request at the time the final status was due).
    """

    rate: float = 10.0
    seed: int = 0
    messages: int | None = None
    shapes: tuple[str, ...] = SHAPES
    channels: tuple[str, ...] = SIM_CHANNELS
    duplicates: float = 0.0
    reorder: float = 0.0
    batch_share: float = 0.1
    time_scale: float = 0.01
    error_bursts: tuple[ErrorBurst, ...] = ()
    report_sends: bool = False
    drop: float = 0.0
    start: datetime = field(default_factory=lambda: datetime(2025, 4, 8, 14, 0, tzinfo=UTC))

    def __post_init__(self) -> None:
        if not (self.rate > 0 and math.isfinite(self.rate)):
            raise ValueError("rate must be a positive number of events per second")
        if self.messages is not None and self.messages < 0:
            raise ValueError("messages must be 0 or more")
        for name in ("duplicates", "reorder", "batch_share", "drop"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a share between 0 and 1")
        if not (self.time_scale > 0 and math.isfinite(self.time_scale)):
            raise ValueError("time_scale must be a positive number")
        if not self.shapes or any(s not in SHAPES for s in self.shapes):
            raise ValueError("shapes must be one or more of A, B, C")
        if not self.channels or any(c not in SIM_CHANNELS for c in self.channels):
            raise ValueError("channels must be one or more of sms, rcs, whatsapp")
        if self.shapes == ("C",) and "sms" not in self.channels:
            raise ValueError("shape C (the SMS Universal callback) needs the sms channel")
        if self.start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        for burst in self.error_bursts:
            if burst.length_s <= 0 or not 0.0 <= burst.share <= 1.0:
                raise ValueError("an error burst needs a positive length and a share in [0, 1]")


@dataclass(slots=True)
class _Pending:
    """An event waiting for its posting time."""

    item: dict[str, Any]
    event: SimEvent
    target: Target = "webhook"


class _Heap:
    """Entries ordered by posting time, ties by insertion order (so output is reproducible)."""

    def __init__(self) -> None:
        self._items: list[tuple[float, int, _Pending | TimedRequest]] = []
        self._counter = itertools.count()

    def push(self, at: float, entry: _Pending | TimedRequest) -> None:
        heapq.heappush(self._items, (at, next(self._counter), entry))

    def peek(self) -> tuple[float, _Pending | TimedRequest] | None:
        if not self._items:
            return None
        at, _, entry = self._items[0]
        return at, entry

    def pop(self) -> tuple[float, _Pending | TimedRequest]:
        at, _, entry = heapq.heappop(self._items)
        return at, entry


def live_traffic(options: TrafficOptions) -> Iterator[TimedRequest]:
    """Yield the requests of ``options`` in posting order (``at`` never decreases).

    Endless when ``options.messages`` is ``None``; otherwise it ends once every event of
    that many messages (resends included) has been yielded.
    """
    return _Traffic(options).requests()


class _Traffic:
    def __init__(self, options: TrafficOptions) -> None:
        self.o = options
        self.rnd = random.Random(options.seed)  # noqa: S311 - reproducible traffic, not crypto
        self.heap = _Heap()
        self.started = 0
        #: Messages whose final status was dropped so far.
        self.dropped = 0
        self.next_start = 0.0
        # Resends add to the requests posted; new messages are paced so the total stays near
        # the rate asked for.
        self.fresh_rate = options.rate / (1.0 + options.duplicates)
        self.shapes = [s for s in options.shapes if s != "C" or "sms" in options.channels]

    def requests(self) -> Iterator[TimedRequest]:
        while True:
            self._start_due_messages()
            top = self.heap.peek()
            if top is None:
                return
            at, entry = self.heap.pop()
            if isinstance(entry, TimedRequest):
                yield entry
                continue
            batch = [(at, entry)]
            if self.rnd.random() < self.o.batch_share:
                batch.extend(self._batch_more(at, self.rnd.randint(2, 5) - 1, entry.target))
            request = self._request(batch)
            yield request
            if request.target == "webhook" and self.rnd.random() < self.o.duplicates:
                delay = self.rnd.uniform(*_RESEND_DELAY_S) * self.o.time_scale
                copy = TimedRequest(request.at + delay, request.body, request.events, resend=True)
                self.heap.push(copy.at, copy)

    def _exhausted(self) -> bool:
        return self.o.messages is not None and self.started >= self.o.messages

    def _start_due_messages(self) -> None:
        while not self._exhausted():
            top = self.heap.peek()
            if top is not None and top[0] < self.next_start:
                return
            count = self._start_message(self.next_start)
            self.next_start += self.rnd.expovariate(self.fresh_rate / count)

    def _batch_more(self, at: float, wanted: int, target: Target) -> list[tuple[float, _Pending]]:
        """Events due within the batch window after ``at``, for the same ``target``, to
        travel in one JSON array."""
        more: list[tuple[float, _Pending]] = []
        window_end = at + _BATCH_WINDOW_S * self.o.time_scale
        while len(more) < wanted:
            self._start_due_messages()
            top = self.heap.peek()
            if top is None or top[0] > window_end or not isinstance(top[1], _Pending):
                break
            if top[1].target != target:
                break
            due, entry = self.heap.pop()
            assert isinstance(entry, _Pending)
            more.append((due, entry))
        return more

    @staticmethod
    def _request(batch: list[tuple[float, _Pending]]) -> TimedRequest:
        """One request of the batch, posted when its last event is due."""
        items = [pending.item for _, pending in batch]
        return TimedRequest(
            at=batch[-1][0],
            body=msgspec.json.encode(items[0] if len(items) == 1 else items),
            events=tuple(pending.event for _, pending in batch),
            target=batch[0][1].target,
        )

    def _start_message(self, t: float) -> int:
        """Plan one message started at ``t``; push its events; return how many it has."""
        self.started += 1
        rnd, scale = self.rnd, self.o.time_scale
        shape = rnd.choice(self.shapes)
        channel = "sms" if shape == "C" else rnd.choice(list(self.o.channels))
        message = Message(
            message_id=f"sim-{self.o.seed:x}-{self.started:07d}",
            shape=shape,
            channel=channel,
            phone=f"+39{rnd.randrange(3_200_000_000, 3_999_999_999)}",
            reference=f"order-{self.o.seed:x}-{self.started}",
        )
        outcome = rnd.choices(("delivered", "error", "expired"), weights=OUTCOME_WEIGHTS)[0]
        timing = CHANNEL_DELAYS[channel]
        delay = min(rnd.lognormvariate(math.log(timing.median_s), timing.sigma), VALIDITY_S)
        if outcome == "expired":
            delay = VALIDITY_S
        submitted = t + rnd.uniform(0.05, 0.3) * scale
        final_at = submitted + delay * scale
        texts = ERROR_TEXTS[channel]
        error: str | None = rnd.choice(texts)
        burst = next((b for b in self.o.error_bursts if b.covers(final_at)), None)
        if burst is not None and rnd.random() < burst.share:
            outcome = "error"
            # One cause dominates an outage; the usual spread of causes continues beside it.
            if rnd.random() < 0.7:
                error = texts[int(burst.at_s) % len(texts)]
        if outcome == "delivered":
            error = None
        elif outcome == "expired":
            error = EXPIRED_TEXT
        timed: list[tuple[float, _Pending]] = []
        if shape == "A":
            sent_at = t + rnd.uniform(0.05, 0.3) * scale
            timed.append((sent_at, self._shape_a(message, "sent", sent_at, None)))
            timed.append((final_at, self._shape_a(message, outcome, final_at, error)))
        elif shape == "B":
            timed.append((final_at, self._shape_b(message, outcome, final_at, error)))
            if outcome == "delivered" and channel != "sms" and rnd.random() < 0.5:
                read_delay = rnd.lognormvariate(math.log(READ_DELAY.median_s), READ_DELAY.sigma)
                read_at = final_at + min(read_delay, VALIDITY_S) * scale
                timed.append((read_at, self._shape_b(message, "read", read_at, None)))
        else:
            parts = rnd.choice(_PARTS)
            for part in range(1, parts + 1):
                part_at = final_at + rnd.uniform(0.0, 0.5) * scale * part
                timed.append(
                    (part_at, self._shape_c(message, outcome, part_at, part, parts, error))
                )
            timed.sort(key=lambda pair: pair[0])
        if len(timed) > 1 and rnd.random() < self.o.reorder:
            # The first event is posted late, after the last one (its timestamp unchanged).
            late = timed[-1][0] + rnd.uniform(0.1, 2.0) * scale
            timed = [*timed[1:], (late, timed[0][1])]
        if self.o.drop and rnd.random() < self.o.drop:
            # Qlara never posts this message's final status (nor a read after it): only its
            # own status API knows it, from the time it was due.
            kept = [(at, p) for at, p in timed if p.event.key.status == "sent"]
            truth = {
                "messageId": message.message_id,
                "customerMessageId": message.reference,
                "channel": message.channel,
                "status": outcome.upper(),
                "description": error,
            }
            self.dropped += 1
            self.heap.push(
                final_at,
                TimedRequest(final_at, msgspec.json.encode([truth]), (), target="qlara"),
            )
            timed = kept
        if self.o.report_sends:
            when, stamp = self._stamp(t)
            send = {
                "messageId": message.message_id,
                "customerMessageId": message.reference,
                "channel": message.channel,
                "phoneNumber": message.phone,
                "sentAt": stamp,
            }
            event = SimEvent(EventKey(message.message_id, "sent", when, 1), channel, shape)
            timed.insert(0, (t, _Pending(send, event, "sends")))
        for at, pending in timed:
            self.heap.push(at, pending)
        return max(len(timed), 1)

    # Payloads ----------------------------------------------------------------------------

    def _stamp(self, t: float) -> tuple[datetime, str]:
        """The event time of second ``t``, to the millisecond, and as Qlara writes it."""
        start = self.o.start.astimezone(UTC)
        start = start.replace(microsecond=start.microsecond // 1000 * 1000)
        when = start + timedelta(milliseconds=round(t * 1000))
        return when, qlara_time(when, "milliseconds")

    def _event(self, m: Message, status: str, when: datetime, part: int = 1) -> SimEvent:
        return SimEvent(EventKey(m.message_id, status, when, part), m.channel, m.shape)

    def _shape_a(self, m: Message, status: str, t: float, error: str | None) -> _Pending:
        when, stamp = self._stamp(t)
        return _Pending(shape_a(m, status, stamp, error), self._event(m, status, when))

    def _shape_b(self, m: Message, status: str, t: float, error: str | None) -> _Pending:
        when, stamp = self._stamp(t)
        read_as = "read" if status == "read" else delivered_or_error(status)
        return _Pending(shape_b(m, status, stamp, error), self._event(m, read_as, when))

    def _shape_c(
        self, m: Message, status: str, t: float, part: int, parts: int, error: str | None
    ) -> _Pending:
        when, stamp = self._stamp(t)
        item = shape_c(m, status, stamp, part, parts, error)
        return _Pending(item, self._event(m, delivered_or_error(status), when, part))


def parse_bursts(specs: Sequence[str]) -> tuple[ErrorBurst, ...]:
    """Read ``AT[:SECONDS[:SHARE]]`` specs (``"60:30"``, ``"120"``, ``"0:10:0.95"``).

    ``AT`` is seconds after the start; ``SECONDS`` defaults to 30 and ``SHARE`` to 0.8.
    Raises ``ValueError`` naming the spec that cannot be read.
    """
    bursts: list[ErrorBurst] = []
    for spec in specs:
        fields = spec.split(":")
        try:
            if not 1 <= len(fields) <= 3:
                raise ValueError(spec)
            at = float(fields[0])
            length = float(fields[1]) if len(fields) > 1 else 30.0
            share = float(fields[2]) if len(fields) > 2 else 0.8
            burst = ErrorBurst(at, length, share)
        except ValueError:
            raise ValueError(
                f"{spec!r}: expected AT[:SECONDS[:SHARE]], e.g. 60:30 or 60:30:0.9"
            ) from None
        if at < 0 or length <= 0 or not 0.0 <= share <= 1.0 or not math.isfinite(at + length):
            raise ValueError(f"{spec!r}: AT >= 0, SECONDS > 0 and SHARE between 0 and 1")
        bursts.append(burst)
    return tuple(bursts)
