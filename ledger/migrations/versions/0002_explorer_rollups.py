"""Counts for the explorer's long windows: events per minute, and covering message indexes.

``event_minutes`` is filled from the events already recorded, one row per minute of
receipt, channel and status. The (status, updated_at) index of ``messages`` gains the
columns the explorer's outcomes read (channel, is_final, latency_seconds).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ledger.timestamps import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

_OUTCOME_COLUMNS = ["channel", "is_final", "latency_seconds"]

#: The events recorded so far, counted by minute of receipt. SQLite stores datetimes as
#: "YYYY-MM-DD HH:MM:SS.ffffff" UTC text (ledger.timestamps): a minute is its first 17
#: characters ("YYYY-MM-DD HH:MM:").
_BACKFILL = {
    "sqlite": "INSERT INTO event_minutes (minute, channel, status, events) "
    "SELECT substr(received_at, 1, 17) || '00.000000', channel, status, count(*) "
    "FROM events GROUP BY 1, 2, 3",
    "postgresql": "INSERT INTO event_minutes (minute, channel, status, events) "
    "SELECT date_trunc('minute', received_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', "
    "channel, status, count(*) FROM events GROUP BY 1, 2, 3",
}


def upgrade() -> None:
    op.create_table(
        "event_minutes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("minute", UTCDateTime(), nullable=False),
        sa.Column("channel", sa.String(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_event_minutes"),
    )
    op.execute(_BACKFILL[op.get_bind().dialect.name])
    op.create_index(
        "ix_event_minutes_minute_channel_status_events",
        "event_minutes",
        ["minute", "channel", "status", "events"],
    )
    _replace_status_index(_OUTCOME_COLUMNS)


def downgrade() -> None:
    _replace_status_index([])
    op.drop_table("event_minutes")


def _replace_status_index(extra: list[str]) -> None:
    op.drop_index("ix_messages_status_updated_at", table_name="messages")
    op.create_index("ix_messages_status_updated_at", "messages", ["status", "updated_at", *extra])
