"""The explorer's reads of the ledger: plain functions over a SQLAlchemy connection.

Read-only, the same statements on SQLite and PostgreSQL (but for the latency percentiles,
which PostgreSQL computes itself), each served by an index of :mod:`ledger.schema`:

- a range of messages is selected by ``updated_at`` (when a new event last changed a
  message; the read API's ``since``/``until`` filter the same time), through
  ``ix_messages_updated_at_message_id``, or ``ix_messages_status_updated_at`` when statuses
  are named;
- events are counted per minute of receipt from ``event_minutes`` (:mod:`ledger.rollup`),
  so charts and gaps over a day read some thousands of rows, not the day's events;
- pending messages through the partial index ``ix_messages_pending``.

Every ``now``, ``start`` and ``end`` is timezone-aware; ranges are ``[start, end)``.
Channels are those of :data:`dashboard.view.CHANNELS`: ``other`` is any channel Qlara may
add, or none.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    Select,
    and_,
    cast,
    func,
    or_,
    select,
    true,
    union,
)
from sqlalchemy.sql.elements import ColumnElement

from dashboard.figures import (
    DeadLetters,
    Failures,
    Gap,
    LastEvent,
    MessageList,
    Outcomes,
    Place,
    RatePoint,
    Stuck,
)
from dashboard.view import CHANNELS
from ledger import MessageDetail, MessageSummary
from ledger.reading import (
    NEWEST_FIRST,
    SUMMARY_COLUMNS,
    after_key,
    bucket_middle,
    count_waiting,
    decode_cursor,
    encode_cursor,
    from_webhook,
    get_message,
    last_event_at,
    list_dead_letters,
    minute_of,
    read_latencies,
    read_places,
    summary_of,
)
from ledger.schema import (
    PHONE_TAIL,
    PHONE_TAIL_DIGITS,
    event_minutes,
    events,
    messages,
    pending_predicate,
)
from metrics.error_classes import delivery_error_class
from qlara import OTHER_CHANNEL, Source, normalise_phone

#: Channels Qlara documents; every other value (or none) is ``other``.
_NAMED_CHANNELS = tuple(c for c in CHANNELS if c != OTHER_CHANNEL)
#: Statuses of a failed message, for the failures page.
_FAILED = ("error", "expired")
#: Rows read per round trip when a filter is applied in Python (the error class).
_BATCH = 500
#: How many raw error texts the failures page lists.
TOP_ERRORS = 10


def channel_of(value: str | None) -> str:
    """The explorer's channel of a stored channel: ``other`` when missing or undocumented."""
    return value if value in _NAMED_CHANNELS else OTHER_CHANNEL


#: The per-minute counts' resolution.
MINUTE = timedelta(minutes=1)


def _channel_is(column: Any, channel: str | None) -> ColumnElement[bool] | None:
    if channel is None:
        return None
    if channel == "other":
        return or_(column.is_(None), column.not_in(_NAMED_CHANNELS))
    return column == channel  # type: ignore[no-any-return]


def _where(query: Select[Any], *clauses: ColumnElement[bool] | None) -> Select[Any]:
    for clause in clauses:
        if clause is not None:
            query = query.where(clause)
    return query


def _updated_in(start: datetime, end: datetime) -> ColumnElement[bool]:
    return and_(messages.c.updated_at >= start, messages.c.updated_at < end)


#: Above this many delivered messages in a window, its latency percentiles come from the
#: hourly latency histogram (``ledger.places``, within 2.2 %) rather than from every latency:
#: reading a week's 900,000 latencies took 400 ms on SQLite.
EXACT_LATENCIES = 200_000


def percentile(ordered: Sequence[float], share: float) -> float | None:
    """The nearest-rank percentile (``share`` in (0, 1]) of sorted values; ``None`` if empty."""
    if not ordered:
        return None
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def _statuses(conn: Connection) -> list[str]:
    """Every status some message has, each found by one seek of the status index (a loose
    index scan: a handful of statuses among a million rows)."""
    status = messages.c.status
    found = select(func.min(status).label("status")).cte("statuses", recursive=True)
    following = select(select(func.min(status)).where(status > found.c.status).scalar_subquery())
    found = found.union_all(following.where(found.c.status.is_not(None)))
    return [s for s in conn.execute(select(found.c.status)).scalars() if s is not None]


def outcomes(conn: Connection, start: datetime, end: datetime, channel: str | None) -> Outcomes:
    """Messages changed in ``[start, end)`` by status, the final ones' rates, and the sent ->
    delivered latency of the delivered ones.

    Each status is counted over its own range of the status index, which carries the
    channel, is_final and the latency: no table row is read, and no sort."""
    in_range = _updated_in(start, end)
    in_channel = _channel_is(messages.c.channel, channel)
    by_status: dict[str, int] = {}
    for status, match in [(s, messages.c.status == s) for s in _statuses(conn)] + [
        ("none", messages.c.status.is_(None))
    ]:
        count = conn.execute(
            _where(select(func.count()).where(match, in_range), in_channel)
        ).scalar_one()
        if count:
            by_status[status] = int(count)
    if by_status.get("delivered", 0) > EXACT_LATENCIES:
        counts = read_latencies(conn, start, end, lambda column: _channel_is(column, channel))
        p50, p95 = bucket_percentile(counts, 0.50), bucket_percentile(counts, 0.95)
        exact = False
    else:
        p50, p95 = _exact_percentiles(conn, in_range, in_channel)
        exact = True
    return Outcomes(
        messages=sum(by_status.values()),
        by_status=by_status,
        delivered=by_status.get("delivered", 0),
        failed=by_status.get("error", 0),
        expired=by_status.get("expired", 0),
        latency_p50=p50,
        latency_p95=p95,
        latency_exact=exact,
    )


def _exact_percentiles(
    conn: Connection, in_range: ColumnElement[bool], in_channel: ColumnElement[bool] | None
) -> tuple[float | None, float | None]:
    timed = (
        messages.c.status == "delivered",
        in_range,
        messages.c.is_final == true(),
        messages.c.latency_seconds.is_not(None),
    )
    latency = messages.c.latency_seconds
    if conn.dialect.name == "postgresql":
        # percentile_disc is the nearest rank: the first value whose cumulative share
        # reaches the fraction, as :func:`percentile` computes.
        p50, p95 = conn.execute(
            _where(
                select(
                    func.percentile_disc(0.50).within_group(latency),
                    func.percentile_disc(0.95).within_group(latency),
                ).where(*timed),
                in_channel,
            )
        ).one()
        return p50, p95
    # SQLite has no percentile function, and its sorter is slower than Python's. The floats
    # (no result processing on SQLite) are taken straight from the driver's cursor:
    # SQLAlchemy's own row handling cost twice the query for a day's messages.
    result = conn.execute(_where(select(latency).where(*timed), in_channel))
    latencies = [row[0] for row in result.cursor.fetchall()]
    result.close()
    latencies.sort()
    return percentile(latencies, 0.50), percentile(latencies, 0.95)


def bucket_percentile(counts: Mapping[int, int], share: float) -> float | None:
    """The nearest-rank percentile of latencies counted by bucket
    (:func:`ledger.places.latency_bucket`), as the middle of its bucket: within 2.2 % of the
    exact one. ``None`` for no latency."""
    total = sum(counts.values())
    if not total:
        return None
    rank = max(math.ceil(share * total), 1)
    seen = 0
    for bucket in sorted(counts):
        seen += counts[bucket]
        if seen >= rank:
            return bucket_middle(bucket)
    return None  # pragma: no cover - the ranks add up to the total


def compare_outcomes(
    engine: Engine,
    this: tuple[datetime, datetime],
    before: tuple[datetime, datetime],
    channel: str | None,
) -> tuple[Outcomes, Outcomes]:
    """:func:`outcomes` of two windows, read side by side on two connections: each is a
    scan of its window's index range, so with two cores free the page waits for the longer
    one rather than for both."""

    def read(span: tuple[datetime, datetime]) -> Outcomes:
        with engine.connect() as conn:
            return outcomes(conn, *span, channel)

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="qlara-outcomes") as pool:
        found_before = pool.submit(read, before)
        found_this = read(this)
        return found_this, found_before.result()


def _bucket(conn: Connection, column: Any, origin: datetime, step: timedelta) -> Any:
    """The index of ``column``'s bucket of ``step`` counted from ``origin`` (an integer)."""
    seconds_at = int(origin.timestamp())
    width = max(1, int(step.total_seconds()))
    if conn.dialect.name == "sqlite":
        # Stored as "YYYY-MM-DD HH:MM:SS.ffffff" UTC text, which strftime reads.
        seconds = cast(func.strftime("%s", column), Integer)
        # ``//``: SQLAlchemy renders ``/`` between integers as true division, which would
        # make a bucket of every second
        return (seconds - seconds_at) // width
    return cast(func.floor((func.extract("epoch", column) - seconds_at) / width), Integer)


def _bucket_start(start: datetime, step: timedelta, index: int) -> datetime:
    return datetime.fromtimestamp(int(start.timestamp()), UTC) + index * step


def _minutes_in(start: datetime, end: datetime) -> ColumnElement[bool]:
    """The per-minute counts of the minutes that begin in ``[start's minute, end)``."""
    return and_(event_minutes.c.minute >= minute_of(start), event_minutes.c.minute < end)


def event_rates(
    conn: Connection, start: datetime, end: datetime, channel: str | None, step: timedelta
) -> list[RatePoint]:
    """Distinct events received from ``start``'s minute to ``end``, per bucket of ``step``
    (whole minutes, counted from ``start``'s minute) and status, in time order; buckets
    without events are left out. Read from the per-minute counts (:mod:`ledger.rollup`)."""
    origin = minute_of(start)
    bucket = _bucket(conn, event_minutes.c.minute, origin, step).label("bucket")
    rows = conn.execute(
        _where(
            select(bucket, event_minutes.c.status, func.sum(event_minutes.c.events)).where(
                _minutes_in(start, end)
            ),
            _channel_is(event_minutes.c.channel, channel),
        )
        .group_by(bucket, event_minutes.c.status)
        .order_by(bucket, event_minutes.c.status)
    )
    return [
        RatePoint(at=_bucket_start(origin, step, int(index)), status=status, events=int(count))
        for index, status, count in rows
        if count
    ]


def gaps(
    conn: Connection, start: datetime, end: datetime, channel: str | None, threshold: timedelta
) -> list[Gap]:
    """Stretches of ``[start, end)`` longer than ``threshold`` in which the webhook delivered
    no event, to the second. Time before the first event the ledger holds is no silence:
    nothing was expected then.

    The per-minute counts say where a silence may be (between two busy minutes more than
    ``threshold`` less two minutes apart, or a busy minute and an edge); the events at its
    two ends say exactly how long it was, one index lookup each. A threshold under two
    minutes also finds silences only between minutes with no event at all.
    """
    channel_clause = _channel_is(event_minutes.c.channel, channel)
    first_minute = conn.execute(
        _where(
            select(func.min(event_minutes.c.minute)).where(event_minutes.c.events > 0),
            channel_clause,
        )
    ).scalar()
    if first_minute is None:
        return []
    first_ever = _edge_in_minute(conn, first_minute, channel, last=False)
    if first_ever >= end:
        return []
    since = max(start, first_ever)
    busy = conn.execute(
        _where(
            select(event_minutes.c.minute)
            .distinct()
            .where(_minutes_in(since, end), event_minutes.c.events > 0),
            channel_clause,
        ).order_by(event_minutes.c.minute)
    ).scalars()
    coarse = max(threshold - 2 * MINUTE, timedelta(0))
    found: list[Gap] = []
    for candidate in find_gaps(busy, since, end, coarse):
        # Each end is the range's edge or a busy minute: the event at it says exactly when
        begins = candidate.start
        if begins != since:
            begins = max(since, _edge_in_minute(conn, begins - MINUTE, channel, last=True))
        ends = candidate.end
        if ends != end:
            ends = _edge_in_minute(conn, ends, channel, last=False)
        if ends - begins > threshold:
            found.append(Gap(start=begins, end=ends))
    return found


def _edge_in_minute(
    conn: Connection, minute: datetime, channel: str | None, *, last: bool
) -> datetime:
    """When the webhook's last (or first) event of ``minute`` was received; the minute's end
    (or start) when its events are gone (purged since it was counted)."""
    column = events.c.received_at
    at = conn.execute(
        _where(
            select(func.max(column) if last else func.min(column)).where(
                column >= minute, column < minute + MINUTE, from_webhook()
            ),
            _channel_is(events.c.channel, channel),
        )
    ).scalar()
    if at is None:
        return minute + MINUTE if last else minute
    return at  # type: ignore[no-any-return]


def find_gaps(
    busy_minutes: Iterable[datetime], start: datetime, end: datetime, threshold: timedelta
) -> list[Gap]:
    """The silences between busy minutes (ascending starts of minutes with events) and the
    range's edges that last longer than ``threshold``."""
    found: list[Gap] = []
    quiet_since = start
    for minute in busy_minutes:
        if minute - quiet_since > threshold:
            found.append(Gap(start=quiet_since, end=minute))
        quiet_since = max(quiet_since, minute + timedelta(minutes=1))
    if end - quiet_since > threshold:
        found.append(Gap(start=quiet_since, end=end))
    return found


def last_events(conn: Connection, now: datetime) -> list[LastEvent]:
    """Each channel's newest event by receipt time, most recent first (``other`` gathers
    undocumented channels and events without one)."""
    newest: dict[str, datetime] = {}
    for name, at in last_event_at(conn).items():
        key = channel_of(name)
        if key not in newest or at > newest[key]:
            newest[key] = at
    ordered = sorted(newest.items(), key=lambda item: item[1], reverse=True)
    return [
        LastEvent(channel=name, at=at, age_seconds=(now - at).total_seconds())
        for name, at in ordered
    ]


def filled_by_polling(conn: Connection, start: datetime, end: datetime, channel: str | None) -> int:
    """Final statuses the reconciler filled in by polling Qlara (the webhook never delivered
    them), received in ``[start, end)``, on ``channel`` when given (``other``: undocumented
    channels and none). Read through ``ix_events_received_at``."""
    query = select(func.count()).where(
        events.c.received_at >= start,
        events.c.received_at < end,
        events.c.source == Source.POLL.value,
    )
    clause = _channel_is(events.c.channel, channel)
    if clause is not None:
        query = query.where(clause)
    return int(conn.execute(query).scalar_one())


#: The fewest trailing digits a phone search takes, those the index holds: four pick about
#: one number in 10,000.
PHONE_SEARCH_DIGITS = PHONE_TAIL_DIGITS


def _search_clause(search: str | None) -> ColumnElement[bool] | None:
    """A message id or customer message id, exactly; or the trailing digits of a phone
    number (:data:`PHONE_SEARCH_DIGITS` at least, normalised as
    :func:`qlara.normalise_phone` does; the whole number is its own trailing digits).

    The matching ids are found first, each way through its own index (the phone's through
    ``ix_messages_phone_tail``, its last four characters, then the whole tail compared on
    the few rows that share them), and the list reads only those: given as one OR beside
    the list's ORDER BY, a planner without statistics walks every message in update order
    instead."""
    if not search or not search.strip():
        return None
    text = search.strip()
    ids = [
        select(messages.c.message_id).where(messages.c.message_id == text),
        select(messages.c.message_id).where(messages.c.customer_message_id == text),
    ]
    needle = normalise_phone(text)
    if len(needle.lstrip("+")) >= PHONE_SEARCH_DIGITS:
        # Only digits and "+" are left, so no LIKE wildcard needs escaping.
        tail = PHONE_TAIL.op("=")(needle[-PHONE_TAIL_DIGITS:])
        ids.append(select(messages.c.message_id).where(tail, messages.c.phone.like(f"%{needle}")))
    return messages.c.message_id.in_(union(*ids))


def _message_filters(
    start: datetime,
    end: datetime,
    channel: str | None,
    statuses: tuple[str, ...] | None,
    search: str | None,
) -> list[ColumnElement[bool] | None]:
    """The clauses of the messages list: a search looks at the whole ledger (the message
    asked for may have changed before the window); without one, the window applies."""
    searching = _search_clause(search)
    return [
        _updated_in(start, end) if searching is None else None,
        _channel_is(messages.c.channel, channel),
        messages.c.status.in_(statuses) if statuses is not None else None,
        searching,
    ]


def _allowed_statuses(status: str | None, error_class: str | None) -> tuple[str, ...] | None:
    """The statuses a list's filters allow (``None``: any); empty when none can match."""
    statuses: tuple[str, ...] | None = (status,) if status is not None else None
    if error_class is not None:
        statuses = tuple(s for s in (statuses or _FAILED) if s in _FAILED)
    return statuses


def count_messages(
    conn: Connection,
    *,
    start: datetime,
    end: datetime,
    channel: str | None = None,
    status: str | None = None,
    error_class: str | None = None,
    search: str | None = None,
) -> int:
    """How many messages :func:`find_messages` pages through. With an error class, counted
    by (status, error text) in the database and classified here, as the list filters."""
    statuses = _allowed_statuses(status, error_class)
    if statuses == ():
        return 0
    clauses = _message_filters(start, end, channel, statuses, search)
    if error_class is None:
        return int(
            conn.execute(_where(select(func.count()).select_from(messages), *clauses)).scalar_one()
        )
    rows = conn.execute(
        _where(
            select(messages.c.status, messages.c.error, func.count()).select_from(messages),
            *clauses,
        ).group_by(messages.c.status, messages.c.error)
    )
    return sum(
        int(n)
        for found_status, error, n in rows
        if delivery_error_class(found_status or "", error) == error_class
    )


#: What the messages list sorts by: each name the page offers, its column. ``updated`` (when
#: a new event last changed the message), newest first, is the default and pages by key;
#: any other order pages by position, so a page may shift while new events arrive.
SORTS: dict[str, Any] = {
    "updated": messages.c.updated_at,
    "sent": messages.c.sent_at,
    "final": messages.c.final_at,
    "latency": messages.c.latency_seconds,
    "status": messages.c.status,
    "channel": messages.c.channel,
    "message_id": messages.c.message_id,
    "customer_message_id": messages.c.customer_message_id,
    "phone": messages.c.phone,
    "error": messages.c.error,
}
DEFAULT_SORT = "updated"
#: How a cursor of a list in any other order than the default starts: its position follows.
_POSITION = "@"


def _message_rows(
    conn: Connection,
    *,
    start: datetime,
    end: datetime,
    channel: str | None,
    status: str | None,
    error_class: str | None,
    search: str | None,
    cursor: str | None,
    sort: str = DEFAULT_SORT,
    descending: bool = True,
) -> Iterator[tuple[MessageSummary, str]]:
    """Every matching message in the order asked, read :data:`_BATCH` at a time, each with
    the cursor that continues the list after it. Empty values sort last either way."""
    if sort not in SORTS:
        raise ValueError(f"unknown sort {sort!r}: one of {', '.join(SORTS)}")
    statuses = _allowed_statuses(status, error_class)
    if statuses == ():
        return
    base = _where(
        select(*SUMMARY_COLUMNS),
        *_message_filters(start, end, channel, statuses, search),
    )
    if sort == DEFAULT_SORT and descending:
        yield from _rows_by_key(conn, base, error_class, cursor)
        return
    column = SORTS[sort]
    key = messages.c.message_id
    ordered = base.order_by(
        (column.desc() if descending else column.asc()).nulls_last(),
        key.desc() if descending else key.asc(),
    )
    position = _position(cursor)
    while True:
        rows = conn.execute(ordered.offset(position).limit(_BATCH)).all()
        for row in rows:
            position += 1
            item = summary_of(row)
            if error_class is None or _error_class(item) == error_class:
                yield item, f"{_POSITION}{position}"
        if len(rows) < _BATCH:
            return


def _position(cursor: str | None) -> int:
    if cursor is None:
        return 0
    digits = cursor.removeprefix(_POSITION)
    if cursor[:1] != _POSITION or not digits.isdigit():
        raise ValueError("invalid cursor")
    return int(digits)


def _rows_by_key(
    conn: Connection, base: Select[Any], error_class: str | None, cursor: str | None
) -> Iterator[tuple[MessageSummary, str]]:
    """Newest update first, continued after the (updated_at, message_id) of a cursor."""
    base = base.order_by(*NEWEST_FIRST)
    after = decode_cursor(cursor) if cursor is not None else None
    while True:
        query = base
        if after is not None:
            query = query.where(after_key(*after))
        rows = conn.execute(query.limit(_BATCH)).all()
        for row in rows:
            item = summary_of(row)
            if error_class is None or _error_class(item) == error_class:
                yield item, encode_cursor(item.updated_at, item.message_id)
        if len(rows) < _BATCH:
            return
        after = (rows[-1].updated_at, rows[-1].message_id)


def _error_class(message: MessageSummary) -> str | None:
    if message.status not in _FAILED:
        return None
    return delivery_error_class(message.status or "", message.error)


def find_messages(
    conn: Connection,
    *,
    start: datetime,
    end: datetime,
    channel: str | None = None,
    status: str | None = None,
    error_class: str | None = None,
    search: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
    sort: str = DEFAULT_SORT,
    descending: bool = True,
) -> MessageList:
    """A page of the messages changed in ``[start, end)`` that match every filter given,
    newest update first, or by any column of :data:`SORTS` (``descending`` or not).

    ``search`` matches a message id or customer message id exactly, or the trailing digits
    of the normalised phone number (four at least), in the whole ledger: the window does
    not narrow a search; ``error_class`` keeps failed and
    expired messages of that class (:func:`metrics.delivery_error_class`). Raises
    ``ValueError`` for a limit below 1, an unknown sort or a cursor this function did not
    produce for that order.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    items: list[MessageSummary] = []
    after: str | None = None
    found = _message_rows(
        conn,
        start=start,
        end=end,
        channel=channel,
        status=status,
        error_class=error_class,
        search=search,
        cursor=cursor,
        sort=sort,
        descending=descending,
    )
    for item, next_cursor in found:
        if len(items) == limit:
            return MessageList(items=items, next_cursor=after)
        items.append(item)
        after = next_cursor
    return MessageList(items=items, next_cursor=None)


def all_messages(
    conn: Connection,
    *,
    start: datetime,
    end: datetime,
    channel: str | None = None,
    status: str | None = None,
    error_class: str | None = None,
    search: str | None = None,
    limit: int,
    sort: str = DEFAULT_SORT,
    descending: bool = True,
) -> list[MessageSummary]:
    """Every message :func:`find_messages` would page through, up to ``limit``, in its order."""
    found = _message_rows(
        conn,
        start=start,
        end=end,
        channel=channel,
        status=status,
        error_class=error_class,
        search=search,
        cursor=None,
        sort=sort,
        descending=descending,
    )
    return [item for _, (item, _) in zip(range(limit), found, strict=False)]


def message_detail(conn: Connection, message_id: str) -> MessageDetail | None:
    """The message with its events (ledger order), or ``None`` when unknown."""
    return get_message(conn, message_id.strip())


def failures(
    conn: Connection, start: datetime, end: datetime, channel: str | None, step: timedelta
) -> Failures:
    """Failed and expired messages changed in ``[start, end)``, by error class, channel and
    bucket of ``step``; the most frequent raw error texts; the share of the final messages
    whose status is expired (the Overview's expiry rate, the same number)."""
    # Counted in the database by text and bucket: a week of failures is tens of thousands of
    # messages but only as many rows here as there are distinct texts per bucket.
    bucket = _bucket(conn, messages.c.updated_at, start, step).label("bucket")
    key = (messages.c.channel, messages.c.status, messages.c.error, bucket)
    rows = conn.execute(
        _where(
            select(*key, func.count()).where(
                _updated_in(start, end), messages.c.status.in_(_FAILED)
            ),
            _channel_is(messages.c.channel, channel),
        ).group_by(*key)
    )
    by_class: Counter[tuple[str, str]] = Counter()
    # By status, as the Overview's expiry rate: a failure whose text says it expired (the
    # platform shape reports an expiry as code 6) is in the "expired" class, not in this share.
    expired = 0
    texts: Counter[tuple[str, str]] = Counter()
    over_time: Counter[tuple[datetime, str]] = Counter()
    classes: dict[tuple[str, str | None], str] = {}
    for stored_channel, status, error, index, n in rows:
        name = channel_of(stored_channel)
        kind = classes.get((status, error))
        if kind is None:
            kind = classes[status, error] = delivery_error_class(status, error)
        by_class[name, kind] += n
        expired += n if status == "expired" else 0
        texts[name, error or f"({status}, no error text)"] += n
        over_time[_bucket_start(start, step, int(index)), kind] += n
    finals = conn.execute(
        _where(
            select(func.count()).where(
                _updated_in(start, end), messages.c.status.in_(("delivered", *_FAILED))
            ),
            _channel_is(messages.c.channel, channel),
        )
    ).scalar_one()
    return Failures(
        by_class=dict(by_class),
        # most frequent first; equal counts by channel and text, so a view reads the same
        top_errors=[
            (name, text, n)
            for (name, text), n in sorted(texts.items(), key=lambda item: (-item[1], item[0]))[
                :TOP_ERRORS
            ]
        ],
        over_time=sorted((at, kind, n) for (at, kind), n in over_time.items()),
        expired_share=expired / finals if finals else None,
    )


def places(conn: Connection, start: datetime, end: datetime, channel: str | None) -> list[Place]:
    """The messages changed in ``[start, end)`` by destination country, operator and channel
    (:class:`dashboard.figures.Place`), most messages first: whole hours from the per-hour
    counts, the partial hours at the edges from the messages (:func:`ledger.places.read`)."""
    found: dict[tuple[str | None, str | None, str], list[float]] = {}
    counted = read_places(conn, start, end, lambda column: _channel_is(column, channel))
    for (country, operator, stored_channel, status), sums in counted.items():
        n, spent, latency, timed = sums
        # messages, delivered, failed, expired, spend, failed spend, latency total, count
        v = found.setdefault((country, operator, channel_of(stored_channel)), [0.0] * 8)
        v[0] += n
        v[1] += n if status == "delivered" else 0
        v[2] += n if status == "error" else 0
        v[3] += n if status == "expired" else 0
        v[4] += spent
        v[5] += spent if status in _FAILED else 0.0
        v[6] += latency
        v[7] += timed
    return sorted(
        (
            Place(
                country=country,
                operator=operator,
                channel=name,
                messages=int(v[0]),
                delivered=int(v[1]),
                failed=int(v[2]),
                expired=int(v[3]),
                spend=v[4],
                failed_spend=v[5],
                latency_total=v[6],
                latency_count=int(v[7]),
            )
            for (country, operator, name), v in found.items()
        ),
        key=lambda p: (-p.messages, p.country or "~", p.operator or "~", p.channel),
    )


def stuck_messages(
    conn: Connection,
    now: datetime,
    thresholds: Mapping[str, timedelta],
    channel: str | None = None,
    limit: int = 200,
) -> Stuck:
    """Messages sent and still without a final status for longer than their channel's
    threshold (``thresholds`` names every channel of :data:`dashboard.view.CHANNELS`),
    oldest sent first."""
    counts: dict[str, int] = {}
    items: list[MessageSummary] = []
    # The channel through an expression, not the column: on the column SQLite would rather
    # walk the channel's whole index than the few pending rows of the partial index.
    stored = func.coalesce(messages.c.channel, "")
    for name in CHANNELS if channel is None else (channel,):
        cut_off = now - thresholds[name]
        pending = and_(pending_predicate(), messages.c.sent_at < cut_off)
        clause = stored.not_in(_NAMED_CHANNELS) if name == "other" else stored == name
        counts[name] = int(
            conn.execute(_where(select(func.count()).where(pending), clause)).scalar_one()
        )
        rows = conn.execute(
            _where(select(*SUMMARY_COLUMNS).where(pending), clause)
            .order_by(messages.c.sent_at)
            .limit(limit)
        )
        items.extend(summary_of(row) for row in rows)
    items.sort(key=lambda m: (m.sent_at or now, m.message_id))
    return Stuck(counts=counts, items=items[:limit])


def waiting_dead_letters(conn: Connection, limit: int = 50) -> DeadLetters:
    """Dead letters not redriven: their number and the ``limit`` oldest."""
    oldest = list_dead_letters(conn, include_redriven=False, limit=limit)
    return DeadLetters(waiting=count_waiting(conn), oldest=oldest)
