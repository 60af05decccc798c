"""The initial ledger: receipts, events, messages, inbound, channels, dead letters.

Revision ID: 0001
Revises:
Create Date: 2025-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ledger.timestamps import UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "receipts",
        sa.Column("receipt_id", sa.String(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("receipt_id", name="pk_receipts"),
    )
    op.create_index("ix_receipts_recorded_at", "receipts", ["recorded_at"])

    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("message_id", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("event_time", UTCDateTime(), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("total_parts", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(), nullable=True),
        sa.Column("customer_message_id", sa.String(), nullable=True),
        sa.Column("phone", sa.String(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("shape", sa.String(length=1), nullable=False),
        sa.Column("price", sa.Float(), nullable=True),
        sa.Column("naive_time", sa.Boolean(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("receipt_id", sa.String(), nullable=False),
        sa.Column("duplicates", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        sa.UniqueConstraint(
            "message_id",
            "status",
            "event_time",
            "part",
            name="uq_events_message_id_status_event_time_part",
        ),
    )
    op.create_index("ix_events_received_at", "events", ["received_at"])
    op.create_index("ix_events_channel_received_at", "events", ["channel", "received_at"])

    op.create_table(
        "messages",
        sa.Column("message_id", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=True),
        sa.Column("status_time", UTCDateTime(), nullable=True),
        sa.Column("is_final", sa.Boolean(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("final_at", UTCDateTime(), nullable=True),
        sa.Column("read_at", UTCDateTime(), nullable=True),
        sa.Column("channel", sa.String(), nullable=True),
        sa.Column("customer_message_id", sa.String(), nullable=True),
        sa.Column("phone", sa.String(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("latency_seconds", sa.Float(), nullable=True),
        sa.Column("latency_observed_at", UTCDateTime(), nullable=True),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("duplicate_count", sa.Integer(), nullable=False),
        sa.Column("first_received_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("message_id", name="pk_messages"),
    )
    op.create_index("ix_messages_updated_at_message_id", "messages", ["updated_at", "message_id"])
    op.create_index("ix_messages_customer_message_id", "messages", ["customer_message_id"])
    op.create_index("ix_messages_phone", "messages", ["phone"])
    op.create_index("ix_messages_status_updated_at", "messages", ["status", "updated_at"])
    op.create_index("ix_messages_channel_updated_at", "messages", ["channel", "updated_at"])
    pending = sa.and_(sa.column("is_final") == sa.false(), sa.column("sent_at").is_not(None))
    op.create_index(
        "ix_messages_pending",
        "messages",
        ["sent_at"],
        postgresql_where=pending,
        sqlite_where=pending,
    )

    op.create_table(
        "inbound",
        sa.Column("inbound_id", sa.String(), nullable=False),
        sa.Column("event_time", UTCDateTime(), nullable=False),
        sa.Column("channel", sa.String(), nullable=True),
        sa.Column("source", sa.String(), nullable=True),
        sa.Column("destination", sa.String(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("message_type", sa.String(), nullable=True),
        sa.Column("naive_time", sa.Boolean(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("receipt_id", sa.String(), nullable=False),
        sa.Column("duplicates", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("inbound_id", name="pk_inbound"),
    )
    op.create_index("ix_inbound_received_at", "inbound", ["received_at"])

    op.create_table(
        "channels",
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("first_seen_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("channel", name="pk_channels"),
    )

    op.create_table(
        "dead_letters",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("receipt_id", sa.String(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("failed_at", UTCDateTime(), nullable=False),
        sa.Column("redriven_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_dead_letters"),
    )
    op.create_index("ix_dead_letters_redriven_at_id", "dead_letters", ["redriven_at", "id"])


def downgrade() -> None:
    for table in ("dead_letters", "channels", "inbound", "messages", "events", "receipts"):
        op.drop_table(table)
