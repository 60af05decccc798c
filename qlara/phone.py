"""Phone numbers: normalised for search, masked for every log line."""

from __future__ import annotations

import re

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
