"""Phone numbers: normalised for search, masked for every log line."""

from __future__ import annotations

import re
from typing import Any

_NON_DIGITS = re.compile(r"[^\d]")


def normalise_phone(value: str) -> str:
    """Return ``value`` as E.164-like digits with a leading ``+`` (``0039`` becomes ``+39``).

    Spaces, dashes, dots and brackets are dropped. A number without a country prefix keeps
    its digits only; nothing is guessed.
    """
    stripped = value.strip()
    digits = _NON_DIGITS.sub("", stripped)
    if stripped.startswith("+"):
        return "+" + digits
    if digits.startswith("00"):
        return "+" + digits[2:]
    return digits


def mask_phone(value: str | None) -> str | None:
    """Mask all but the country prefix and the last 4 digits.

    ``+393901234567`` becomes ``+39******4567``.

    Short numbers keep at most their last 2 digits. ``None`` stays ``None``.
    """
    if value is None:
        return None
    norm = normalise_phone(value)
    plus = norm.startswith("+")
    digits = norm[1:] if plus else norm
    if len(digits) <= 4:
        return ("+" if plus else "") + "*" * max(len(digits) - 2, 0) + digits[-2:]
    head = digits[:2] if plus and len(digits) > 8 else ""
    tail = digits[-4:]
    return ("+" if plus else "") + head + "*" * (len(digits) - len(head) - 4) + tail


#: A phone number inside free text: an optional +, then 7 to 15 digits, spaces, dots or
#: dashes between them allowed (E.164 has at most 15 digits); not a date, nor part of a
#: word, an id, a path or a time.
_PHONE_IN_TEXT = re.compile(r"(?<![\w+./:-])(?!\d{4}-\d\d-\d\d)\+?\d(?:[ .-]?\d){6,14}(?![\w/:-])")
#: Fields of Qlara's payloads that hold a phone number (shape A; shape B's recipient and,
#: for an inbound reply, its sender).
PHONE_FIELDS = frozenset({"phoneNumber", "destination", "source"})
#: Fields that are ids, times or names, never free text: left as sent, so that a message
#: can still be found by what the page shows.
_NOT_TEXT = frozenset(
    {"messageId", "customerMessageId", "timestamp", "sentAt", "channel", "status", "eventType"}
)


def mask_phones(value: Any) -> Any:
    """A JSON value with every phone number in it masked as :func:`mask_phone` does: the
    values of :data:`PHONE_FIELDS`, and any run of 7 to 15 digits standing alone inside any
    other string (a number quoted in an error text or a reply), ids and times excepted.
    Numbers (JSON numbers) are left alone: prices, codes and part numbers are not phones."""
    if isinstance(value, dict):
        return {key: _masked_field(key, item) for key, item in value.items()}
    if isinstance(value, list):
        return [mask_phones(item) for item in value]
    if isinstance(value, str):
        return _PHONE_IN_TEXT.sub(lambda found: mask_phone(found.group()) or "", value)
    return value


def _masked_field(key: str, item: Any) -> Any:
    if isinstance(item, str):
        if key in PHONE_FIELDS:
            return mask_phone(item)
        if key in _NOT_TEXT:
            return item
    return mask_phones(item)
