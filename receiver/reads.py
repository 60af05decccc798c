"""The read API: messages, their event history, and webhook traffic numbers.

Every route needs ``Authorization: Bearer <read_token>`` (compared in constant time) and
answers 401 ``{"error": ...}`` otherwise. Ledger calls block, so the handlers run in worker
threads. Field names are camelCase; times are ISO 8601 in UTC; a ledger that cannot answer
gives 503 with ``Retry-After``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_to_bytes

import msgspec
from litestar import Request, get
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.exceptions import NotFoundException
from litestar.handlers import BaseRouteHandler

from ledger import EventRecord, MessageSummary, WebhookStats
from qlara import PartState, part_states
from receiver.auth import bearer_in_headers
from receiver.errors import BadParameter, ReadUnauthorized
from receiver.runtime import Runtime

#: The most items one page may hold (the ledger's own cap).
MAX_LIMIT = 500
DEFAULT_LIMIT = 50
_MAX_TEXT = 200
_FILTERS = ("customerMessageId", "phone", "status", "channel")
_MESSAGE_PATH = "/v1/messages/"
#: The query parameters of ``GET /v1/messages``, and what each means (in the OpenAPI
#: document too, :mod:`receiver.openapi`).
QUERY = {
    "customerMessageId": "The application's own id of the message, exactly",
    "phone": "Any part of the phone number (its digits)",
    "status": "The message's current status (delivered, error, expired, sent, ...)",
    "channel": "sms, rcs, whatsapp, or another channel Qlara named",
    "since": "Last update at or after: ISO 8601, or unix seconds",
    "until": "Last update before: ISO 8601, or unix seconds",
    "limit": f"Messages per page, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})",
    "cursor": "The nextCursor of the previous page",
}
_PARAMETERS = frozenset(QUERY)
assert set(_FILTERS) <= _PARAMETERS


def require_read_token(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: the request carries the read token as a bearer token."""
    runtime: Runtime = connection.app.state.runtime
    if not bearer_in_headers(connection.scope["headers"], runtime.read_token):
        raise ReadUnauthorized


@get(
    f"{_MESSAGE_PATH}{{message_id:path}}",
    guards=[require_read_token],
    sync_to_thread=True,
)
def get_message(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    """One message: its current state and its events, oldest first.

    The id may hold slashes, escaped (``%2F``) or not: everything after ``/v1/messages/``
    is the id, exactly as given (no segment is merged or dropped).

    200::

        {"messageId": str, "status": str|null, "statusTime": time|null, "isFinal": bool,
         "sentAt": time|null, "finalAt": time|null, "readAt": time|null,
         "channel": str|null, "customerMessageId": str|null, "phone": str|null,
         "error": str|null, "latencySeconds": float|null, "eventCount": int,
         "duplicateCount": int, "firstReceivedAt": time, "updatedAt": time,
         "events": [{"status": str, "statusCode": int|null, "eventTime": time,
                     "receivedAt": time, "channel": str|null, "part": int,
                     "totalParts": int, "error": str|null, "shape": "A"|"B"|"C",
                     "price": float|null, "duplicates": int, "naiveTime": bool,
                     "timeFromReceipt": bool,
                     "raw": object}],
         "parts": [{"part": int, "totalParts": int, "status": str|null,
                    "eventTime": time|null, "isFinal": bool, "error": str|null}]}

    ``parts`` lists every part of the message, 1 to ``totalParts`` (one for a message
    that is not a multi-part SMS), with the status that decides it; ``status`` is ``null``
    for a part no report has arrived for. The message is final once every part is, and
    delivered only when every part was; otherwise ``error`` is its failed part's.

    404 ``{"error": "unknown message"}`` when the ledger has no such message.
    """
    runtime: Runtime = state.runtime
    detail = runtime.ledger().get_message(_message_id(request.scope))
    if detail is None:
        raise NotFoundException(detail="unknown message")
    body = message_json(detail)
    body["events"] = [event_json(event) for event in detail.events]
    body["parts"] = [part_json(part) for part in part_states(detail.events)]
    return body


@get("/v1/messages", guards=[require_read_token], sync_to_thread=True)
def list_messages(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    """Messages matching every filter given, newest update first, a page at a time.

    Query: ``customerMessageId``, ``phone`` (any part of the number), ``status``,
    ``channel``, ``since`` and ``until`` (ISO 8601, or unix seconds; on the last update,
    ``since`` inclusive, ``until`` exclusive), ``limit`` (1-500, default 50), ``cursor``
    (the ``next_cursor`` of the previous page).

    200 ``{"items": [<message without "events">], "nextCursor": str|null}``; 400
    ``{"error": ..., "parameter": <name>}`` for an unknown, repeated or unusable parameter.
    """
    runtime: Runtime = state.runtime
    query = _single_values(request.query_params.dict())
    filters = {name: _text(query, name) for name in _FILTERS}
    since = _time(query, "since")
    until = _time(query, "until")
    if since is not None and until is not None and until <= since:
        raise BadParameter("until", "`until` must be later than `since`")
    limit = _limit(query)
    cursor = _text(query, "cursor")
    try:
        page = runtime.ledger().list_messages(
            customer_message_id=filters["customerMessageId"],
            phone=filters["phone"],
            status=filters["status"],
            channel=filters["channel"],
            since=since,
            until=until,
            limit=limit,
            cursor=cursor,
        )
    except ValueError as exc:  # every other value was checked above: the cursor is foreign
        raise BadParameter("cursor", "`cursor` is not one this API gave out") from exc
    return {
        "items": [message_json(item) for item in page.items],
        "nextCursor": page.next_cursor,
    }


@get("/v1/stats/webhook", guards=[require_read_token], sync_to_thread=True)
def webhook_stats(state: State) -> dict[str, Any]:
    """How the webhook traffic looks now.

    200::

        {"lastEventAt": {channel: time}, "eventsLast5m": int, "eventsLast15m": int,
         "eventsLast60m": int, "pending": int, "oldestPendingAgeSeconds": float|null,
         "eventsTotal": int, "duplicatesTotal": int, "inboundTotal": int,
         "filledByPollingTotal": int}

    ``lastEventAt`` is per channel (``"other"`` for events without one), by receipt time;
    the windows count distinct events received; ``pending`` counts messages sent and not
    yet final; ``filledByPollingTotal`` counts final statuses the reconciler got from Qlara's
    status API because the webhook never delivered them.
    """
    runtime: Runtime = state.runtime
    return stats_json(runtime.ledger().webhook_stats())


def message_json(message: MessageSummary) -> dict[str, Any]:
    """A message's state in the API's field names."""
    return {
        "messageId": message.message_id,
        "status": message.status,
        "statusTime": message.status_time,
        "isFinal": message.is_final,
        "sentAt": message.sent_at,
        "finalAt": message.final_at,
        "readAt": message.read_at,
        "channel": message.channel,
        "customerMessageId": message.customer_message_id,
        "phone": message.phone,
        "error": message.error,
        "latencySeconds": message.latency_seconds,
        "eventCount": message.event_count,
        "duplicateCount": message.duplicate_count,
        "firstReceivedAt": message.first_received_at,
        "updatedAt": message.updated_at,
    }


def event_json(event: EventRecord) -> dict[str, Any]:
    """One stored event in the API's field names; ``raw`` as the JSON object received."""
    return {
        "status": event.status,
        "statusCode": event.status_code,
        "eventTime": event.event_time,
        "receivedAt": event.received_at,
        "channel": event.channel,
        "part": event.part,
        "totalParts": event.total_parts,
        "error": event.error,
        "shape": event.shape.value,
        "price": event.price,
        "duplicates": event.duplicates,
        "naiveTime": event.naive_time,
        "timeFromReceipt": event.time_from_receipt,
        "source": event.source,
        "raw": _raw_json(event.raw),
    }


def part_json(part: PartState) -> dict[str, Any]:
    """One part's state in the API's field names."""
    event = part.event
    return {
        "part": part.part,
        "totalParts": part.total_parts,
        "status": part.status,
        "eventTime": event.event_time if event is not None else None,
        "isFinal": part.is_final,
        "error": event.error if event is not None else None,
    }


def stats_json(stats: WebhookStats) -> dict[str, Any]:
    """Webhook traffic numbers in the API's field names."""
    return {
        "lastEventAt": dict(sorted(stats.last_event_at.items())),
        "eventsLast5m": stats.events_last_5m,
        "eventsLast15m": stats.events_last_15m,
        "eventsLast60m": stats.events_last_60m,
        "pending": stats.pending,
        "oldestPendingAgeSeconds": stats.oldest_pending_age_seconds,
        "eventsTotal": stats.events_total,
        "duplicatesTotal": stats.duplicates_total,
        "inboundTotal": stats.inbound_total,
        "filledByPollingTotal": stats.filled_by_polling_total,
    }


def _message_id(scope: Any) -> str:
    """The id in ``/v1/messages/<id>``, from the path as the client sent it: Litestar's
    ``path`` parameter is a ``pathlib.Path`` and its normalised ``scope["path"]`` merges
    ``a//b`` and drops a trailing slash, so the raw path is decoded once here instead."""
    raw: bytes | None = scope.get("raw_path")
    path = scope["path"] if raw is None else unquote_to_bytes(raw).decode("utf-8", "replace")
    return str(path)[len(_MESSAGE_PATH) :]


def _raw_json(raw: bytes) -> Any:
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError:  # stored before parsing could fail; show it as text
        return raw.decode("utf-8", "replace")


def _single_values(params: dict[str, list[str]]) -> dict[str, str]:
    values: dict[str, str] = {}
    for name, given in params.items():
        if name not in _PARAMETERS:
            raise BadParameter(name, f"unknown parameter `{name[:40]}`")
        if len(given) != 1:
            raise BadParameter(name, f"`{name}` given more than once")
        values[name] = given[0]
    return values


def _text(query: dict[str, str], name: str) -> str | None:
    value = query.get(name)
    if value is None:
        return None
    value = value.strip()
    if not value:
        raise BadParameter(name, f"`{name}` must not be empty")
    if len(value) > _MAX_TEXT:
        raise BadParameter(name, f"`{name}` is longer than {_MAX_TEXT} characters")
    return value


def _time(query: dict[str, str], name: str) -> datetime | None:
    value = _text(query, name)
    if value is None:
        return None
    try:
        if value.replace(".", "", 1).isdigit():
            return datetime.fromtimestamp(float(value), tz=UTC)
        parsed = datetime.fromisoformat(value)
        # astimezone overflows past the first or last UTC date (9999-12-31T23:59:59-01:00)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise BadParameter(name, f"`{name}` must be an ISO 8601 time or unix seconds") from exc


def _limit(query: dict[str, str]) -> int:
    value = query.get("limit")
    if value is None:
        return DEFAULT_LIMIT
    value = value.strip()
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= MAX_LIMIT:
        raise BadParameter("limit", f"`limit` must be an integer from 1 to {MAX_LIMIT}")
    return int(value)
