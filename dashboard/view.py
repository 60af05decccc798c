"""What a page shows, as read from and written to the URL's query parameters.

A view is a contract with the alert rules, whose ``dashboard_url`` opens an exact view:

- ``channel``: ``sms``, ``rcs``, ``whatsapp`` or ``other`` (any other or no channel);
  absent: every channel.
- ``window``: a duration before now (:mod:`qlara.durations`: ``5m``, ``1h``, ``7d``);
  default ``1h``. Or ``from`` and ``to``, ISO 8601 instants (UTC when no offset is given),
  for a fixed range; they win over ``window``.
- ``status``: a message status (``delivered``, ``error`` ...); absent: any.
- ``search``: a message id, a customer message id, or the last digits of a phone number
  (four at least).
- ``message``: the message the detail page shows.

Reading never fails: a value that cannot be read is dropped (the default applies) and
named in :attr:`View.problems`, for the page to say so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from qlara import CHANNEL_BUCKETS
from qlara.durations import format_duration, parse_duration

#: The channels a view may be narrowed to; ``other`` is every channel Qlara may add, or none.
CHANNELS: tuple[str, ...] = CHANNEL_BUCKETS
#: Statuses a view may be narrowed to (a message's current status; ``read`` is never one).
STATUSES: tuple[str, ...] = ("sent", "received", "delivered", "error", "expired", "unknown")
#: The windows offered in the sidebar; any other duration works in the URL.
WINDOWS: tuple[str, ...] = ("5m", "30m", "1h", "6h", "1d", "3d", "7d")
DEFAULT_WINDOW = "1h"
#: The longest range a view shows (window, or from to to), and the instants it may start and
#: end at: a range and the one before it then stay within the dates Python can count.
MAX_SPAN = timedelta(days=3660)
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
#: The query parameters a view owns; others in the URL are left alone.
PARAMETERS: tuple[str, ...] = ("channel", "window", "from", "to", "status", "search", "message")


@dataclass(frozen=True, slots=True)
class View:
    """A page's filters. ``start``/``end`` set a fixed range (both or neither, start < end);
    otherwise ``window`` counts back from now."""

    channel: str | None = None
    window: str = DEFAULT_WINDOW
    start: datetime | None = None
    end: datetime | None = None
    status: str | None = None
    search: str | None = None
    message: str | None = None
    problems: tuple[str, ...] = field(default=(), compare=False)

    def span(self, now: datetime) -> tuple[datetime, datetime]:
        """The range shown, ``[start, end)``: the fixed one, or the window before ``now``."""
        if self.start is not None and self.end is not None:
            return self.start, self.end
        return now - parse_duration(self.window), now

    def previous_span(self, now: datetime) -> tuple[datetime, datetime]:
        """The range of the same length just before :meth:`span`."""
        start, end = self.span(now)
        return start - (end - start), start

    def with_changes(self, **changes: object) -> View:
        """A copy with ``changes`` applied, and no problems (they were the old URL's)."""
        return replace(self, problems=(), **changes)  # type: ignore[arg-type]

    def to_query(self) -> dict[str, str]:
        """The query parameters that reopen this view; defaults are left out."""
        query: dict[str, str] = {}
        if self.channel is not None:
            query["channel"] = self.channel
        if self.start is not None and self.end is not None:
            query["from"] = _instant_text(self.start)
            query["to"] = _instant_text(self.end)
        elif self.window != DEFAULT_WINDOW:
            query["window"] = self.window
        if self.status is not None:
            query["status"] = self.status
        if self.search:
            query["search"] = self.search
        if self.message:
            query["message"] = self.message
        return query


def read_view(query: Mapping[str, str]) -> View:
    """The view the query parameters describe; unreadable values are dropped and noted."""
    problems: list[str] = []
    channel = _choice(query, "channel", CHANNELS, problems)
    status = _choice(query, "status", STATUSES, problems)
    window = DEFAULT_WINDOW
    if query.get("window"):
        try:
            duration = parse_duration(query["window"])
            if duration > MAX_SPAN:
                raise ValueError(f"longer than {format_duration(MAX_SPAN)}")
            window = format_duration(duration)
        except ValueError as exc:
            problems.append(f"window: {exc}")
    start = _instant(query, "from", problems)
    end = _instant(query, "to", problems)
    if (start is None) != (end is None):
        if start is not None or end is not None:
            problems.append("from and to: give both, or neither")
        start = end = None
    elif start is not None and end is not None and start >= end:
        problems.append("from and to: from must be before to")
        start = end = None
    elif start is not None and end is not None and end - start > MAX_SPAN:
        problems.append(f"from and to: at most {format_duration(MAX_SPAN)} apart")
        start = end = None
    return View(
        channel=channel,
        window=window,
        start=start,
        end=end,
        status=status,
        search=(query.get("search") or "").strip() or None,
        message=(query.get("message") or "").strip() or None,
        problems=tuple(problems),
    )


def _choice(
    query: Mapping[str, str], name: str, allowed: tuple[str, ...], problems: list[str]
) -> str | None:
    value = (query.get(name) or "").strip().lower()
    if not value:
        return None
    if value not in allowed:
        problems.append(f"{name}: {value!r} is not one of {', '.join(allowed)}")
        return None
    return value


def _instant(query: Mapping[str, str], name: str, problems: list[str]) -> datetime | None:
    text = (query.get(name) or "").strip()
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        # astimezone overflows past the first or last UTC date (9999-12-31T23:59:59-01:00)
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (ValueError, OverflowError):
        problems.append(f"{name}: {text[:40]!r} is not an ISO 8601 time")
        return None
    if not EARLIEST <= value <= LATEST:
        problems.append(f"{name}: not between {EARLIEST.year} and {LATEST.year}")
        return None
    return value


def _instant_text(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def bucket_size(start: datetime, end: datetime, points: int = 120) -> timedelta:
    """A chart's bucket for ``[start, end)``: about ``points`` buckets, a whole number of
    minutes (at least one), so rates read as events per minute."""
    minutes = max(1, round((end - start).total_seconds() / 60 / points))
    return timedelta(minutes=minutes)
