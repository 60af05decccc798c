"""The ledger's read interface: what a reader outside the ledger calls with its own connection.

The read API reaches these through :class:`ledger.Ledger`; the explorer, which reads through
its own engine, calls them directly. Besides this module's own reads (a message with its
events, a filtered, keyset-paginated list) it names the read halves of the modules that own
the rollups and the dead-letter record (:mod:`ledger.places`, :mod:`ledger.rollup`,
:mod:`ledger.stats`, :mod:`ledger.dead_letter_store`), so that readers depend on this one
module and the tables of :mod:`ledger.schema`, and the writing halves beside them stay the
ledger's own (the import contract in ``pyproject.toml`` holds every other reader to that).

Lists are ordered newest update first: by ``updated_at`` (when a new event last changed the
message), then ``message_id``, both descending. ``updated_at`` is always set, unlike
``status_time`` (a message with only read receipts has none), so the order is total and the
cursor simple. ``since`` (inclusive) and ``until`` (exclusive) filter on the same time.

The cursor is opaque to callers: URL-safe base64 of ``[updated_at ISO 8601, message_id]`` of
the last item returned.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Select, and_, or_, select
from sqlalchemy.sql.elements import ColumnElement

from ledger.dead_letter_store import count_waiting, list_dead_letters
from ledger.places import bucket_middle, read_latencies
from ledger.places import read as read_places
from ledger.results import EventRecord, MessageDetail, MessagePage, MessageSummary
from ledger.rollup import minute_of
from ledger.schema import events, messages
from ledger.stats import from_webhook, last_event_at
from ledger.timestamps import require_aware
from qlara import Shape, normalise_phone
from qlara.status import PRECEDENCE

__all__ = [
    "MAX_PAGE",
    "NEWEST_FIRST",
    "SUMMARY_COLUMNS",
    "after_key",
    "bucket_middle",
    "count_waiting",
    "decode_cursor",
    "encode_cursor",
    "from_webhook",
    "get_message",
    "last_event_at",
    "list_dead_letters",
    "list_messages",
    "minute_of",
    "read_latencies",
    "read_places",
    "summary_fields",
    "summary_of",
]

#: The most items one page may hold.
MAX_PAGE = 500

#: The columns of a :class:`ledger.MessageSummary`, in its field order.
SUMMARY_COLUMNS = (
    messages.c.message_id,
    messages.c.status,
    messages.c.status_time,
    messages.c.is_final,
    messages.c.sent_at,
    messages.c.final_at,
    messages.c.read_at,
    messages.c.channel,
    messages.c.customer_message_id,
    messages.c.phone,
    messages.c.error,
    messages.c.latency_seconds,
    messages.c.event_count,
    messages.c.duplicate_count,
    messages.c.first_received_at,
    messages.c.updated_at,
)

#: The lists' order, newest update first: a total order (``message_id`` breaks ties), which
#: :func:`after_key` continues and ``ix_messages_updated_at_message_id`` serves without a sort.
NEWEST_FIRST = (messages.c.updated_at.desc(), messages.c.message_id.desc())


def get_message(conn: Connection, message_id: str) -> MessageDetail | None:
    """The message with its events, or ``None`` when the ledger has never seen it."""
    row = conn.execute(select(*SUMMARY_COLUMNS).where(messages.c.message_id == message_id)).first()
    if row is None:
        return None
    event_rows = conn.execute(select(events).where(events.c.message_id == message_id)).all()
    records = sorted(
        (_event_record(r._mapping) for r in event_rows),
        key=lambda e: (e.event_time, PRECEDENCE.get(e.status, 0), e.status, e.part),
    )
    return MessageDetail(**summary_fields(row._mapping), events=records)


def list_messages(
    conn: Connection,
    *,
    customer_message_id: str | None,
    phone: str | None,
    status: str | None,
    channel: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    cursor: str | None,
) -> MessagePage:
    """A page of messages matching every filter given (see the module docstring for order).

    ``phone`` is normalised (:func:`qlara.normalise_phone`) and matched as a substring of the
    stored normalised number, so ``4567``, ``+39 390`` and the full number all find it; a value
    with no digits matches nothing. ``status`` and ``channel`` are compared lower-cased.
    ``limit`` is capped at :data:`MAX_PAGE`. Raises ``ValueError`` for a limit below 1, a naive
    datetime, or a cursor this ledger did not produce.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    limit = min(limit, MAX_PAGE)
    query: Select[Any] = select(*SUMMARY_COLUMNS)
    if customer_message_id is not None:
        query = query.where(messages.c.customer_message_id == customer_message_id)
    if phone is not None:
        needle = normalise_phone(phone)
        if not needle.lstrip("+"):
            return MessagePage(items=[], next_cursor=None)
        # Only digits and "+" are left, so no LIKE wildcard needs escaping.
        query = query.where(messages.c.phone.like(f"%{needle}%"))
    if status is not None:
        query = query.where(messages.c.status == status.strip().lower())
    if channel is not None:
        query = query.where(messages.c.channel == channel.strip().lower())
    if since is not None:
        query = query.where(messages.c.updated_at >= require_aware(since, "since"))
    if until is not None:
        query = query.where(messages.c.updated_at < require_aware(until, "until"))
    if cursor is not None:
        query = query.where(after_key(*decode_cursor(cursor)))
    query = query.order_by(*NEWEST_FIRST)
    rows = conn.execute(query.limit(limit + 1)).all()
    items = [summary_of(r) for r in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        next_cursor = encode_cursor(last.updated_at, last.message_id)
    return MessagePage(items=items, next_cursor=next_cursor)


def after_key(updated_at: datetime, message_id: str) -> ColumnElement[bool]:
    """The messages that follow the one with this key in :data:`NEWEST_FIRST` order: the read
    API's pages and the explorer's list continue after their cursor with this one clause, so
    both keep to what ``ix_messages_updated_at_message_id`` serves."""
    return or_(
        messages.c.updated_at < updated_at,
        and_(messages.c.updated_at == updated_at, messages.c.message_id < message_id),
    )


def encode_cursor(updated_at: datetime, message_id: str) -> str:
    """The opaque cursor that continues a list after the message with this sort key."""
    raw = json.dumps([updated_at.isoformat(), message_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Read a cursor made by :func:`encode_cursor`. Raises ``ValueError`` for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        when, message_id = json.loads(raw)
        if not isinstance(when, str) or not isinstance(message_id, str):
            raise ValueError("wrong types")
        return require_aware(datetime.fromisoformat(when), "cursor time"), message_id
    except (ValueError, TypeError, binascii.Error) as exc:
        raise ValueError("invalid cursor") from exc


def summary_of(row: Row[Any]) -> MessageSummary:
    """The :class:`ledger.MessageSummary` of a row of :data:`SUMMARY_COLUMNS`."""
    return MessageSummary(**summary_fields(row._mapping))


def summary_fields(row: Any) -> dict[str, Any]:
    """The fields of a :class:`ledger.MessageSummary` from a row of :data:`SUMMARY_COLUMNS`."""
    return {column.name: row[column.name] for column in SUMMARY_COLUMNS}


def _event_record(row: Any) -> EventRecord:
    return EventRecord(
        status=row["status"],
        status_code=row["status_code"],
        event_time=row["event_time"],
        received_at=row["received_at"],
        channel=row["channel"],
        part=row["part"],
        total_parts=row["total_parts"],
        error=row["error"],
        shape=Shape(row["shape"]),
        price=row["price"],
        duplicates=row["duplicates"],
        naive_time=bool(row["naive_time"]),
        raw=bytes(row["raw"]),
        time_from_receipt=bool(row["time_from_receipt"]),
        source=row["source"],
    )
