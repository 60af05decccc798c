"""Reading every payload shape Qlara's documentation describes (see FACTS.md).

Raw bytes become :class:`~qlara.events.DeliveryEvent` and :class:`~qlara.events.InboundMessage`
values here and nowhere else. Problems are raised as :class:`InvalidPayload`, naming the
problem and the field but never echoing a value (it may be a phone number or a secret).

Shapes:

- A, the Webhooks guide: ``messageId``, ``customerMessageId``, ``phoneNumber``, ``status``
  (``SENT DELIVERED ERROR EXPIRED``), ``timestamp``, ``channel``, ``error``.
- B, the platform guide: ``eventType`` ``DELIVERY`` (``statusCode``, ``description``,
  ``destination``), ``READ``, or ``INBOUND`` (``source``, ``destination``, ``text``).
- C, the SMS Universal callback: ``eventType`` ``DELIVERY`` with ``statusCode``,
  ``statusDescription``, ``price``, ``numPart`` of ``totalParts``.

Unknown statuses, codes and channels are kept as given (lower-cased); unknown fields stay in
``raw``.

Implausible but well-formed values are kept, never refused: a refusal loses the event for
good. An event whose ``timestamp`` is missing, or that no UTC time can hold, or that lies more
than :data:`PLAUSIBLE_SPAN` from its receipt is timed at its receipt (``time_from_receipt``);
a part number below 1 or above the total is kept as sent. Each is noted in
:attr:`ParsedBody.notes`, for the receiver to count and log.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from qlara.events import DeliveryEvent, InboundMessage, Shape, Source, placeholder_id
from qlara.phone import normalise_phone
from qlara.status import MAX_PARTS

#: ``statusCode`` values Qlara documents (B and C); others are kept as their digits.
STATUS_CODES: dict[int, str] = {3: "delivered", 6: "error"}

#: Statuses whose description is an error text rather than a courtesy line.
_NOT_ERRORS = frozenset({"sent", "received", "delivered", "read"})

_SHAPE_C_FIELDS = ("numPart", "totalParts", "price", "statusDescription")
_NON_FINITE = re.compile(rb"(?<![\w\"])-?(NaN|Infinity)(?![\w\"])")
#: How far from its receipt an event's own time may be and still be believed.
PLAUSIBLE_SPAN = timedelta(days=3653)
_NO_UTC_TIME = "`{}` is no time UTC can hold: timed at its receipt"
_TOO_FAR = "`{}` is more than ten years from its receipt: timed at its receipt"
_DECODER = msgspec.json.Decoder()
_BOM = b"\xef\xbb\xbf"
_TOO_DEEP = "JSON nested too deeply: arrays and objects may nest a few hundred levels at most"
#: A JSON string (escapes included) or one structural character: what _split_array reads.
_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},]', re.DOTALL)
_ENCODE = msgspec.json.encode


class InvalidPayload(ValueError):
    """A payload (or one item of an array) that cannot be read as a Qlara event.

    ``problem`` is a sentence safe to return to the caller and to log: it names the field and
    what is wrong with it, never the value. ``field`` is the JSON field, or ``None`` when the
    problem is the body as a whole.
    """

    def __init__(self, problem: str, field: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.field = field


@dataclass(frozen=True, slots=True)
class ItemRejection:
    """One refused item of a JSON array: its index and why."""

    index: int
    problem: str
    field: str | None


@dataclass(frozen=True, slots=True)
class ItemNote:
    """An implausible value of an accepted item, kept: the item's index (``None`` for a
    single-object body), the field and what is odd about it (never the value)."""

    index: int | None
    problem: str
    field: str


@dataclass(slots=True)
class ParsedBody:
    """What a request body held: the events read, the array items refused, and the notes on
    implausible values that were kept."""

    events: list[DeliveryEvent] = field(default_factory=list)
    inbound: list[InboundMessage] = field(default_factory=list)
    rejected: list[ItemRejection] = field(default_factory=list)
    notes: list[ItemNote] = field(default_factory=list)
    is_array: bool = False

    @property
    def accepted(self) -> int:
        """How many items were read (status events and inbound messages)."""
        return len(self.events) + len(self.inbound)


ItemReader = Callable[..., "DeliveryEvent | InboundMessage"]


def parse_body(
    body: bytes, received_at: float | None = None, *, read_item: ItemReader | None = None
) -> ParsedBody:
    """Read a webhook request body: one JSON object, or a JSON array of them.

    Raises :class:`InvalidPayload` when the body as a whole is unusable (empty, malformed,
    NaN or Infinity, nested too deeply, a top-level scalar, an empty array) or when a
    single-object body is invalid. In an array, each invalid item is listed in ``rejected``
    and the rest is read, even when the invalid item is nested too deeply for the body to be
    decoded whole. A NUL character in a text field, and bytes that are not UTF-8 inside a
    string, are read as U+FFFD (the raw bytes keep them). A leading UTF-8 byte order mark is
    skipped. ``received_at`` (unix seconds, default now) is the receipt time an event without
    a plausible time of its own is given. ``read_item`` reads each object (default
    :func:`parse_item`, the webhook's shapes; :func:`parse_sends` passes the send reader).
    """
    read = parse_item if read_item is None else read_item
    received = datetime.fromtimestamp(time.time() if received_at is None else received_at, UTC)
    body = body.removeprefix(_BOM)
    if not body.strip():
        raise InvalidPayload("empty body: expected a JSON object or array")
    doc: Any
    try:
        doc = _decode(body)
    except _NestedTooDeep:
        items = _split_array(body)
        if items is None:
            raise InvalidPayload(_TOO_DEEP) from None
        doc = [_decode_item(item) for item in items]
    # JSON carries a NUL character only as this escape; no text field keeps one (see _no_nul).
    nul = b"\\u0000" in body
    out = ParsedBody()
    if isinstance(doc, dict):
        reading = _Reading(received, out.notes, None)
        _add(out, read(_no_nul(doc) if nul else doc, body, reading=reading))
        return out
    if not isinstance(doc, list):
        raise InvalidPayload(f"expected a JSON object or array at top level, got {_json_type(doc)}")
    if not doc:
        raise InvalidPayload("empty array: expected at least one event")
    out.is_array = True
    for index, item in enumerate(doc):
        if isinstance(item, InvalidPayload):  # an item of a body that could not be decoded whole
            out.rejected.append(ItemRejection(index, item.problem, item.field))
            continue
        if not isinstance(item, dict):
            out.rejected.append(
                ItemRejection(index, f"expected a JSON object, got {_json_type(item)}", None)
            )
            continue
        try:
            raw = _ENCODE(item)  # the original, NULs included
            reading = _Reading(received, out.notes, index)
            _add(out, read(_no_nul(item) if nul else item, raw, reading=reading))
        except InvalidPayload as exc:
            out.rejected.append(ItemRejection(index, exc.problem, exc.field))
    return out


class _NestedTooDeep(Exception):
    """The decoder ran out of nesting depth (it recurses once per array or object)."""


def _decode(data: bytes) -> Any:
    """``data`` decoded as JSON. Raises :class:`InvalidPayload`, or :class:`_NestedTooDeep`."""
    try:
        return _DECODER.decode(data)
    except RecursionError:
        raise _NestedTooDeep from None
    except UnicodeDecodeError:
        # Text in another encoding inside a string: read as U+FFFD, as NUL is. Bytes of 0x80
        # and above are never JSON syntax, so the replacement leaves the structure as it was.
        return _decode(data.decode("utf-8", "replace").encode())
    except msgspec.ValidationError as exc:  # a number too large for a float: Infinity
        raise InvalidPayload(f"invalid JSON number: {_strip_value(str(exc))}") from exc
    except msgspec.DecodeError as exc:
        if _NON_FINITE.search(data):
            raise InvalidPayload("NaN and Infinity are not valid JSON numbers") from exc
        raise InvalidPayload(f"malformed JSON: {_strip_value(str(exc))}") from exc


def _decode_item(data: bytes) -> Any:
    """One item of an array split by :func:`_split_array`: its value, or why it has none."""
    try:
        return _decode(data)
    except _NestedTooDeep:
        return InvalidPayload(_TOO_DEEP)
    except InvalidPayload as exc:
        return exc


def _split_array(body: bytes) -> list[bytes] | None:
    """The items of a top-level JSON array as byte strings, found without recursion.

    Used only when the decoder cannot take the body whole, so that one item nested too
    deeply does not cost the others. Strings are skipped as tokens, brackets counted, and
    the commas at depth one split the items; each item is then decoded on its own, which
    validates it. ``None`` when the body is not one array closed at its end.
    """
    text = body.strip()
    if not text.startswith(b"["):
        return None
    items: list[bytes] = []
    depth = 0
    start = 1
    for token in _TOKENS.finditer(text):
        mark = token.group()
        if mark in b"[{":
            depth += 1
        elif mark in b"]}":
            depth -= 1
            if depth == 0:
                if token.end() != len(text):
                    return None
                items.append(text[start : token.start()])
                return items
        elif mark == b"," and depth == 1:
            items.append(text[start : token.start()])
            start = token.end()
    return None


def _no_nul(value: Any) -> Any:
    """``value`` with every NUL character in its strings (keys included) replaced by U+FFFD.

    PostgreSQL text cannot hold NUL, and no Qlara field means one; the raw body, kept with
    each event, still has the original.
    """
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_no_nul(k): _no_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_nul(v) for v in value]
    return value


def parse_item(
    item: dict[str, Any], raw: bytes, *, reading: _Reading | None = None
) -> DeliveryEvent | InboundMessage:
    """Read one decoded JSON object of any documented shape. ``raw`` is kept on the result.

    ``reading`` gives the receipt time an event without a plausible time of its own is
    timed at, and where its notes go (by default: now, and nowhere). Raises
    :class:`InvalidPayload` naming the field at fault.
    """
    if reading is None:
        reading = _Reading(datetime.now(UTC), None, None)
    event_type = _opt_str(item, "eventType")
    if event_type is None and "statusCode" not in item:
        return _parse_guide(item, raw, reading)
    kind = (event_type or "DELIVERY").strip().upper()
    if kind == "INBOUND":
        return _parse_inbound(item, raw, reading)
    message_id = _message_id(item)
    shape = Shape.UNIVERSAL if any(k in item for k in _SHAPE_C_FIELDS) else Shape.PLATFORM
    if kind == "READ":
        status, code = "read", None
    elif kind == "DELIVERY":
        status, code = _status_from_code(item)
    else:  # an event type Qlara has not documented yet: kept under its own name
        status, code = kind.lower(), _opt_int(item, "statusCode")
    description = _opt_str(item, "statusDescription") if shape is Shape.UNIVERSAL else None
    if description is None:
        description = _opt_str(item, "description")
    part = _opt_int(item, "numPart")
    part = 1 if part is None else part
    total = _opt_int(item, "totalParts")
    total = part if total is None else total
    if part < 1:
        reading.note("`numPart` is below 1: kept as sent, read as part 1", "numPart")
    elif total < part:
        reading.note("`totalParts` is below `numPart`: kept as sent", "totalParts")
    elif total > MAX_PARTS:
        reading.note(
            f"`totalParts` is above {MAX_PARTS}, more than an SMS can have: kept as sent",
            "totalParts",
        )
    event_time, naive, from_receipt = _timestamp(item, reading)
    return DeliveryEvent(
        message_id=message_id,
        status=status,
        status_code=code,
        event_time=event_time,
        naive_time=naive,
        shape=shape,
        raw=raw,
        channel=_channel(item),
        customer_message_id=_opt_str(item, "customerMessageId"),
        phone=_phone(item, "destination"),
        error=description if status not in _NOT_ERRORS else None,
        part=part,
        total_parts=total,
        price=_price(item, reading),
        time_from_receipt=from_receipt,
    )


def _add(out: ParsedBody, parsed: DeliveryEvent | InboundMessage) -> None:
    if isinstance(parsed, InboundMessage):
        out.inbound.append(parsed)
    else:
        out.events.append(parsed)


def _parse_guide(item: dict[str, Any], raw: bytes, reading: _Reading) -> DeliveryEvent:
    message_id = _message_id(item)
    status = _opt_str(item, "status")
    if status is None:
        raise InvalidPayload("missing field `status`", "status")
    status = status.strip().lower()
    if not status:
        raise InvalidPayload("`status` must not be empty", "status")
    event_time, naive, from_receipt = _timestamp(item, reading)
    error = _opt_str(item, "error")
    return DeliveryEvent(
        message_id=message_id,
        status=status,
        event_time=event_time,
        naive_time=naive,
        shape=Shape.GUIDE,
        raw=raw,
        channel=_channel(item),
        customer_message_id=_opt_str(item, "customerMessageId"),
        phone=_phone(item, "phoneNumber"),
        error=error if status not in _NOT_ERRORS else None,
        time_from_receipt=from_receipt,
    )


def _parse_inbound(item: dict[str, Any], raw: bytes, reading: _Reading) -> InboundMessage:
    event_time, naive, from_receipt = _timestamp(item, reading)
    qlara_id = _opt_str(item, "messageId")
    return InboundMessage(
        inbound_id=qlara_id or "sha256:" + hashlib.sha256(raw).hexdigest(),
        event_time=event_time,
        naive_time=naive,
        raw=raw,
        channel=_channel(item),
        source=_phone(item, "source"),
        destination=_phone(item, "destination"),
        text=_opt_str(item, "text"),
        message_type=_opt_str(item, "messageType"),
        time_from_receipt=from_receipt,
    )


def _status_from_code(item: dict[str, Any]) -> tuple[str, int | None]:
    code = _opt_int(item, "statusCode")
    if code is not None and code in STATUS_CODES:
        return STATUS_CODES[code], code
    named = _opt_str(item, "status")
    if named is not None and named.strip():
        return named.strip().lower(), code
    if code is None:
        raise InvalidPayload("missing field `statusCode`", "statusCode")
    return str(code), code


def _message_id(item: dict[str, Any], name: str = "messageId") -> str:
    value = item.get(name)
    if value is None:
        raise InvalidPayload(f"missing field `{name}`", name)
    if not isinstance(value, str):
        raise InvalidPayload(f"`{name}` must be a string, got {_json_type(value)}", name)
    value = value.strip()
    if not value:
        raise InvalidPayload(f"`{name}` must not be empty", name)
    if len(value) > 200:
        raise InvalidPayload(f"`{name}` is longer than 200 characters", name)
    return value


def parse_sends(body: bytes, received_at: float | None = None) -> ParsedBody:
    """Read a ``POST /v1/sends`` body: one send, or a JSON array of them, as
    :func:`parse_body` reads a webhook's (same limits, same per-item refusals).

    Each send becomes a ``sent`` event from the application (:attr:`Source.APP`); see
    :func:`parse_send_item`.
    """
    return parse_body(body, received_at, read_item=parse_send_item)


def parse_send_item(
    item: dict[str, Any], raw: bytes, *, reading: _Reading | None = None
) -> DeliveryEvent:
    """One send the application reports: ``messageId`` and/or ``customerMessageId`` (at
    least one), ``channel``, optional ``phoneNumber``, optional ``sentAt`` (ISO 8601 or unix
    time; default: the receipt time). Other fields are kept in ``raw``.

    A send named by ``customerMessageId`` alone is recorded under :func:`placeholder_id`
    until an event naming both ids joins it to its Qlara message. Raises
    :class:`InvalidPayload` naming the field at fault.
    """
    if reading is None:
        reading = _Reading(datetime.now(UTC), None, None)
    message_id = _message_id(item) if item.get("messageId") is not None else None
    customer_id = (
        _message_id(item, "customerMessageId")
        if item.get("customerMessageId") is not None
        else None
    )
    if message_id is None and customer_id is None:
        raise InvalidPayload(
            "a send needs `messageId` or `customerMessageId` (or both)", "messageId"
        )
    channel = _channel(item)
    if channel is None:
        raise InvalidPayload("missing field `channel`", "channel")
    if item.get("sentAt") is None:
        sent_at, naive, from_receipt = reading.received, False, True
    else:
        sent_at, naive, from_receipt = _timestamp(item, reading, "sentAt")
    return DeliveryEvent(
        message_id=message_id if message_id is not None else placeholder_id(customer_id or ""),
        status="sent",
        event_time=sent_at,
        naive_time=naive,
        shape=Shape.APP,
        raw=raw,
        channel=channel,
        customer_message_id=customer_id,
        phone=_phone(item, "phoneNumber"),
        time_from_receipt=from_receipt,
        source=Source.APP,
    )


@dataclass(frozen=True, slots=True)
class _Reading:
    """What reading one item needs besides the item: its receipt time, and where to note the
    implausible values kept (``notes``, under the item's ``index``)."""

    received: datetime
    notes: list[ItemNote] | None
    index: int | None

    def note(self, problem: str, name: str) -> None:
        if self.notes is not None:
            self.notes.append(ItemNote(self.index, problem, name))


def _timestamp(
    item: dict[str, Any], reading: _Reading, name: str = "timestamp"
) -> tuple[datetime, bool, bool]:
    """(event time, read without an offset, taken from the receipt instead), from the field
    ``name``."""
    value = item.get(name)
    if value is None:
        return _receipt_time(reading, f"`{name}` is missing: timed at its receipt", name)
    if isinstance(value, bool):
        raise InvalidPayload(f"`{name}` must be an ISO 8601 string, got boolean", name)
    naive = False
    if isinstance(value, int | float):
        # Unix time: seconds, or milliseconds when it is too large to be seconds. An integer
        # of hundreds of digits overflows a float: in the check as in the division.
        try:
            if not math.isfinite(value):
                raise ValueError("not a time")
            seconds = value / 1000 if value > 100_000_000_000 else value
            parsed = datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return _receipt_time(reading, _NO_UTC_TIME.format(name), name)
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise InvalidPayload(f"`{name}` is not an ISO 8601 date-time", name) from exc
        naive = parsed.tzinfo is None
        try:
            # 9999-12-31T23:59:59-01:00 is past the last UTC date
            parsed = parsed.replace(tzinfo=UTC) if naive else parsed.astimezone(UTC)
        except OverflowError:
            return _receipt_time(reading, _NO_UTC_TIME.format(name), name)
    else:
        raise InvalidPayload(f"`{name}` must be an ISO 8601 string, got {_json_type(value)}", name)
    if abs(parsed - reading.received) > PLAUSIBLE_SPAN:
        return _receipt_time(reading, _TOO_FAR.format(name), name)
    return parsed, naive, False


def _receipt_time(reading: _Reading, problem: str, name: str) -> tuple[datetime, bool, bool]:
    reading.note(problem, name)
    return reading.received, False, True


def _channel(item: dict[str, Any]) -> str | None:
    value = _opt_str(item, "channel")
    if value is None:
        return None
    value = value.strip().lower()
    return value or None


def _phone(item: dict[str, Any], name: str) -> str | None:
    value = _opt_str(item, name)
    if value is None or not value.strip():
        return None
    return normalise_phone(value)


def _price(item: dict[str, Any], reading: _Reading) -> float | None:
    value = item.get("price")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidPayload(f"`price` must be a number, got {_json_type(value)}", "price")
    try:  # an integer of hundreds of digits overflows a float
        price = float(value)
    except OverflowError:
        reading.note("`price` is beyond any float: kept in the raw payload only", "price")
        return None
    if not math.isfinite(price):
        raise InvalidPayload("`price` must be a finite number", "price")
    return price


def _opt_str(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name)
    if value is None or isinstance(value, str):
        return value
    raise InvalidPayload(f"`{name}` must be a string, got {_json_type(value)}", name)


def _opt_int(item: dict[str, Any], name: str) -> int | None:
    value = item.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidPayload(f"`{name}` must be an integer, got {_json_type(value)}", name)
    if not -(2**31) <= value < 2**31:
        raise InvalidPayload(f"`{name}` is out of range", name)
    return value


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _strip_value(message: str) -> str:
    """msgspec's messages name a position, not a value; keep them short and lower-case."""
    return message.split(" - at ")[0].rstrip(".")[:120].lower()
