"""The typed values everything after the edge works with.

A :class:`DeliveryEvent` is one status report about one message (or one part of a multi-part
SMS); an :class:`InboundMessage` is a reply from a recipient, which is never a status. A
:class:`Receipt` is what the receiver hands to the workers: the events of one accepted request,
under an id that makes recording it twice the same as recording it once.
"""

from __future__ import annotations

import enum
from datetime import datetime

import msgspec

#: Channels Qlara documents. Any other value is kept as given (lower-cased).
CHANNELS: frozenset[str] = frozenset({"sms", "rcs", "whatsapp"})
#: Where an undocumented channel, or none, is counted, filtered and given thresholds.
OTHER_CHANNEL = "other"
#: The one list of channels every layer shows: each documented one, then ``other``. The
#: values of the metrics' ``channel`` label, the explorer's channel filter, and the keys of
#: every per-channel setting and threshold.
CHANNEL_BUCKETS: tuple[str, ...] = ("sms", "rcs", "whatsapp", OTHER_CHANNEL)


def channel_bucket(channel: str | None) -> str:
    """The bucket of an event's channel (any case): itself when documented, else ``other``."""
    if channel is not None:
        lowered = channel.lower()
        if lowered in CHANNELS:
            return lowered
    return OTHER_CHANNEL


#: Statuses Qlara documents, lower-cased. Any other value is kept as given (lower-cased).
STATUSES: frozenset[str] = frozenset(
    {"sent", "received", "delivered", "read", "error", "expired", "unknown"}
)


class Shape(enum.StrEnum):
    """Which documented payload shape an event came in (see FACTS.md)."""

    GUIDE = "A"  #: the Webhooks guide: ``status`` string, ``phoneNumber``
    PLATFORM = "B"  #: the platform guide: ``eventType``, ``statusCode``, ``destination``
    UNIVERSAL = "C"  #: the SMS Universal callback: ``statusCode`` per part, ``price``
    APP = "S"  #: a send the application reported to ``POST /v1/sends``
    POLL = "P"  #: a status the reconciler polled from Qlara's status API


class Source(enum.StrEnum):
    """Who told the sidecar about an event."""

    WEBHOOK = "webhook"  #: Qlara's webhook
    APP = "app"  #: the application, through ``POST /v1/sends``
    POLL = "poll"  #: Qlara's status API, asked by the reconciler


#: How the ledger names a message the application reported by its ``customerMessageId``
#: alone, until an event naming both ids tells which Qlara ``messageId`` it is.
PLACEHOLDER_PREFIX = "cmid:"


def placeholder_id(customer_message_id: str) -> str:
    """The ledger's id for a message known only by its ``customerMessageId``."""
    return PLACEHOLDER_PREFIX + customer_message_id


class DeliveryEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One status report about one message part.

    ``status`` and ``channel`` are lower-case; values Qlara does not document are kept as
    given. ``event_time`` is timezone-aware UTC; ``naive_time`` says Qlara sent it without
    an offset and it was read as UTC; ``time_from_receipt`` says it is the receipt time,
    because the event's own was missing or implausible. ``part`` and ``total_parts`` are as
    sent, even when implausible (a part below 1 or above the total). ``raw`` is the item's
    JSON, unknown fields included. ``source`` says who reported it (:class:`Source`); a send
    the application reported by ``customerMessageId`` alone has the
    :func:`placeholder_id` of it as ``message_id``.
    """

    message_id: str
    status: str
    event_time: datetime
    shape: Shape
    raw: bytes
    channel: str | None = None
    customer_message_id: str | None = None
    phone: str | None = None
    error: str | None = None
    status_code: int | None = None
    part: int = 1
    total_parts: int = 1
    price: float | None = None
    naive_time: bool = False
    time_from_receipt: bool = False
    source: Source = Source.WEBHOOK

    @property
    def by_customer_id_only(self) -> bool:
        """Whether this is a send known by its ``customerMessageId`` alone."""
        return self.source is Source.APP and self.message_id.startswith(PLACEHOLDER_PREFIX)


class InboundMessage(msgspec.Struct, frozen=True, kw_only=True):
    """A reply from a recipient (``eventType: INBOUND``). Recorded on its own, never a status.

    ``inbound_id`` is Qlara's message id when it sends one, otherwise a digest of the raw item,
    so a resent reply is recognised as the same one. Times as in :class:`DeliveryEvent`.
    """

    inbound_id: str
    event_time: datetime
    raw: bytes
    channel: str | None = None
    source: str | None = None
    destination: str | None = None
    text: str | None = None
    message_type: str | None = None
    naive_time: bool = False
    time_from_receipt: bool = False


class Receipt(msgspec.Struct, frozen=True, kw_only=True):
    """The events of one accepted webhook request, as handed from receiver to workers.

    ``receipt_id`` is unique per accepted request; the ledger records each receipt id once,
    so a receipt delivered twice (broker redelivery, spool replay) is recorded once.
    ``received_at`` is the unix time (seconds) the receiver accepted it.
    """

    receipt_id: str
    received_at: float
    events: tuple[DeliveryEvent, ...] = ()
    inbound: tuple[InboundMessage, ...] = ()

    def encode(self) -> bytes:
        """Serialise to JSON bytes (``raw`` fields as base64)."""
        return _ENCODER.encode(self)

    @classmethod
    def decode(cls, data: bytes | str) -> Receipt:
        """Parse what :meth:`encode` produced. Raises ``msgspec.ValidationError``."""
        return _DECODER.decode(data)


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(Receipt)
