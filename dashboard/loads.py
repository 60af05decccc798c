"""The queries the pages run, through one engine per process, cached for a few seconds.

Every page asks with a ``now`` rounded down to :data:`CACHE_SECONDS`, so the viewers of one
view in the same few seconds share one answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import streamlit as st
from sqlalchemy import Engine

from dashboard import queries
from dashboard.config import current
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
from ledger import MessageDetail, MessageSummary, build_engine

#: How long a query's answer is reused.
CACHE_SECONDS = 5


def now() -> datetime:
    """The current time, rounded down to :data:`CACHE_SECONDS`."""
    seconds = int(current().clock().timestamp())
    return datetime.fromtimestamp(seconds - seconds % CACHE_SECONDS, UTC)


@st.cache_resource
def _engine(url: str) -> Engine:
    return build_engine(url)


def engine() -> Engine:
    """The ledger's engine for this process's configuration."""
    return _engine(current().database_url)


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False)
def compare_outcomes(
    this: tuple[datetime, datetime], before: tuple[datetime, datetime], channel: str | None
) -> tuple[Outcomes, Outcomes]:
    """:func:`dashboard.queries.compare_outcomes`."""
    return queries.compare_outcomes(engine(), this, before, channel)


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False)
def event_rates(
    start: datetime, end: datetime, channel: str | None, step: timedelta
) -> list[RatePoint]:
    """:func:`dashboard.queries.event_rates`."""
    with engine().connect() as conn:
        return queries.event_rates(conn, start, end, channel, step)


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False)
def gaps(start: datetime, end: datetime, channel: str | None, threshold: timedelta) -> list[Gap]:
    """:func:`dashboard.queries.gaps`."""
    with engine().connect() as conn:
        return queries.gaps(conn, start, end, channel, threshold)


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False)
def last_events(at: datetime) -> list[LastEvent]:
    """:func:`dashboard.queries.last_events`."""
    with engine().connect() as conn:
        return queries.last_events(conn, at)


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False)
def count_messages(
    start: datetime,
    end: datetime,
    channel: str | None,
    status: str | None,
    error_class: str | None,
    search: str | None,
) -> int:
    """:func:`dashboard.queries.count_messages`."""
    with engine().connect() as conn:
        return queries.count_messages(
            conn,
            start=start,
            end=end,
            channel=channel,
            status=status,
            error_class=error_class,
            search=search,
        )


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False)
def find_messages(
    start: datetime,
    end: datetime,
    channel: str | None,
    status: str | None,
    error_class: str | None,
    search: str | None,
    limit: int,
    cursor: str | None,
    sort: str = queries.DEFAULT_SORT,
    descending: bool = True,
) -> MessageList:
    """:func:`dashboard.queries.find_messages`."""
    with engine().connect() as conn:
        return queries.find_messages(
            conn,
            start=start,
            end=end,
            channel=channel,
            status=status,
            error_class=error_class,
            search=search,
            limit=limit,
            cursor=cursor,
            sort=sort,
            descending=descending,
        )


def all_messages(
    start: datetime,
    end: datetime,
    channel: str | None,
    status: str | None,
    error_class: str | None,
    search: str | None,
    limit: int,
    sort: str = queries.DEFAULT_SORT,
    descending: bool = True,
) -> list[MessageSummary]:
    """:func:`dashboard.queries.all_messages` (not cached: an export is asked for once)."""
    with engine().connect() as conn:
        return queries.all_messages(
            conn,
            start=start,
            end=end,
            channel=channel,
            status=status,
            error_class=error_class,
            search=search,
            limit=limit,
            sort=sort,
            descending=descending,
        )


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False)
def message_detail(message_id: str) -> MessageDetail | None:
    """:func:`dashboard.queries.message_detail`."""
    with engine().connect() as conn:
        return queries.message_detail(conn, message_id)


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False)
def failures(start: datetime, end: datetime, channel: str | None, step: timedelta) -> Failures:
    """:func:`dashboard.queries.failures`."""
    with engine().connect() as conn:
        return queries.failures(conn, start, end, channel, step)


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False)
def stuck_messages(
    at: datetime, thresholds: Mapping[str, timedelta], channel: str | None, limit: int
) -> Stuck:
    """:func:`dashboard.queries.stuck_messages`."""
    with engine().connect() as conn:
        return queries.stuck_messages(conn, at, thresholds, channel, limit)


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False)
def filled_by_polling(start: datetime, end: datetime, channel: str | None) -> int:
    """:func:`dashboard.queries.filled_by_polling`."""
    with engine().connect() as conn:
        return queries.filled_by_polling(conn, start, end, channel)


def dead_letters(limit: int) -> DeadLetters:
    """:func:`dashboard.queries.waiting_dead_letters` (not cached: a redrive changes it)."""
    with engine().connect() as conn:
        return queries.waiting_dead_letters(conn, limit)


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False)
def places(start: datetime, end: datetime, channel: str | None) -> list[Place]:
    """:func:`dashboard.queries.places`."""
    with engine().connect() as conn:
        return queries.places(conn, start, end, channel)
