"""Durations written the Prometheus way: ``90s``, ``15m``, ``1h30m``, ``3d``.

The alert thresholds (:mod:`alerts.thresholds`) and the explorer and settings
(:mod:`dashboard`, :mod:`sidecar.settings`) share this spelling, so a link or a setting
built from an alert rule's ``for:`` or range reads the same everywhere. One grammar: whole
numbers (ASCII digits), each followed by a unit, the units from largest to smallest, each at
most once.

The two readers differ in what they take around that grammar, because they read different
things:

- :func:`prometheus_seconds` reads what is written into a rule file, so it takes exactly
  what Prometheus takes: units ``y w d h m s ms``, lower case, no spaces, ``0s`` allowed
  (a ``for`` that waits for nothing), nothing around it: a trailing newline would end up
  inside the rendered rule. It gives seconds as a float.
- :func:`parse_duration` reads what people type into a URL or a setting, so it forgives
  spaces around and upper case, and it takes units ``w d h m s`` only: its durations are
  windows and thresholds, never shorter than a second nor counted in years. Zero is
  refused (an empty window). It gives a ``timedelta``.

Each has its writer: :func:`format_prometheus` (weeks included, ``0s`` for nothing) and
:func:`format_duration` (no weeks, since ``7d`` reads better in a URL and is what
Prometheus writes; nothing is refused).
"""

from __future__ import annotations

import re
from datetime import timedelta
from itertools import pairwise

#: Every unit, largest first, and its length in seconds.
UNIT_SECONDS: dict[str, float] = {
    "y": 365 * 86400,
    "w": 7 * 86400,
    "d": 86400,
    "h": 3600,
    "m": 60,
    "s": 1,
    "ms": 0.001,
}
#: The units :func:`prometheus_seconds` reads (all of them).
PROMETHEUS_UNITS = tuple(UNIT_SECONDS)
#: The units :func:`parse_duration` reads.
EXPLORER_UNITS = ("w", "d", "h", "m", "s")

# ``ms`` is tried before ``m``: in "5ms" the unit is milliseconds (a lone ``m`` is followed by
# a digit or nothing).
_PART = re.compile(r"([0-9]+)(ms|[ywdhms])")
_PARTS = re.compile(r"(?:[0-9]+(?:ms|[ywdhms]))*")


def _parts(text: str) -> list[tuple[str, str]] | None:
    """``(count, unit)`` for each part of ``text`` (none for ""), or ``None`` when ``text``
    is not made only of parts."""
    if not _PARTS.fullmatch(text):
        return None
    return _PART.findall(text)


def _in_order(parts: list[tuple[str, str]], units: tuple[str, ...]) -> bool:
    """Whether every unit is one of ``units``, largest first, each once."""
    indexes = [units.index(unit) if unit in units else -1 for _, unit in parts]
    return -1 not in indexes and all(a < b for a, b in pairwise(indexes))


def prometheus_seconds(duration: str) -> float:
    """The length of a Prometheus duration (``1h30m`` -> 5400.0); ``ValueError`` if invalid."""
    parts = _parts(duration)
    if not parts or not _in_order(parts, PROMETHEUS_UNITS):
        raise ValueError(f"{duration!r} is not a Prometheus duration such as 90s, 15m, 1h or 3d")
    return float(sum(int(count) * UNIT_SECONDS[unit] for count, unit in parts))


def format_prometheus(total: float) -> str:
    """:func:`prometheus_seconds` the other way round, in the largest units that divide it
    (``5400`` -> ``1h30m``, ``0`` -> ``0s``). Milliseconds are dropped."""
    return _spell(int(total), ("w", "d", "h", "m", "s")) or "0s"


def parse_duration(text: str) -> timedelta:
    """``1h30m`` -> 90 minutes. Units: w d h m s, largest first, each at most once; spaces
    around and upper case are forgiven.

    Raises ``ValueError`` for anything else, or for a zero duration.
    """
    value = text.strip().lower()
    parts = _parts(value)
    if not parts or any(unit not in EXPLORER_UNITS for _, unit in parts):
        raise ValueError(f"{text!r} is not a duration such as 5m, 1h or 7d")
    if not _in_order(parts, EXPLORER_UNITS):
        raise ValueError(f"{text!r}: units must go from largest to smallest, each once")
    try:
        total = sum(
            (int(count) * timedelta(seconds=UNIT_SECONDS[unit]) for count, unit in parts),
            timedelta(),
        )
    except OverflowError as exc:  # past timedelta's 999,999,999 days
        raise ValueError(f"{text[:40]!r}: too long a duration") from exc
    if total <= timedelta():
        raise ValueError(f"{text!r}: a duration must be longer than zero")
    return total


def format_duration(value: timedelta) -> str:
    """The shortest spelling :func:`parse_duration` reads back as ``value`` (whole seconds),
    without weeks: ``7d`` reads better than ``1w`` in a URL, and is what Prometheus writes."""
    text = _spell(int(value.total_seconds()), ("d", "h", "m", "s"))
    if not text:
        raise ValueError("a duration must be longer than zero")
    return text


def _spell(seconds: int, units: tuple[str, ...]) -> str:
    """``seconds`` in the largest of ``units`` that fit, each with a count above zero; ""
    for zero or less."""
    text = ""
    if seconds <= 0:
        return text
    for unit in units:
        count, seconds = divmod(seconds, int(UNIT_SECONDS[unit]))
        if count:
            text += f"{count}{unit}"
    return text
