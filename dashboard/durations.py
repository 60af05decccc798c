"""Durations written the Prometheus way: ``5m``, ``1h``, ``1h30m``, ``7d``.

The URL's ``window`` parameter and the dashboard's thresholds share this spelling, so a
link built from an alert rule's ``for:`` or range reads the same here.
"""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS: dict[str, timedelta] = {
    "w": timedelta(weeks=1),
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "s": timedelta(seconds=1),
}
_PART = re.compile(r"(\d+)([wdhms])")
_WHOLE = re.compile(r"(?:\d+[wdhms])+")


def parse_duration(text: str) -> timedelta:
    """``1h30m`` -> 90 minutes. Units: w d h m s, largest first, each at most once.

    Raises ``ValueError`` for anything else, or for a zero duration.
    """
    value = text.strip().lower()
    if not _WHOLE.fullmatch(value):
        raise ValueError(f"{text!r} is not a duration such as 5m, 1h or 7d")
    parts = _PART.findall(value)
    units = [unit for _, unit in parts]
    order = list(_UNITS)
    if units != sorted(set(units), key=order.index):
        raise ValueError(f"{text!r}: units must go from largest to smallest, each once")
    try:
        total = sum((int(n) * _UNITS[unit] for n, unit in parts), timedelta())
    except OverflowError as exc:  # past timedelta's 999,999,999 days
        raise ValueError(f"{text[:40]!r}: too long a duration") from exc
    if total <= timedelta():
        raise ValueError(f"{text!r}: a duration must be longer than zero")
    return total


def format_duration(value: timedelta) -> str:
    """The shortest spelling :func:`parse_duration` reads back as ``value`` (whole seconds)."""
    seconds = int(value.total_seconds())
    if seconds <= 0:
        raise ValueError("a duration must be longer than zero")
    text = ""
    for unit, size in _UNITS.items():
        if unit == "w":  # 7d reads better than 1w in a URL, and is what Prometheus writes
            continue
        count, seconds = divmod(seconds, int(size.total_seconds()))
        if count:
            text += f"{count}{unit}"
    return text
