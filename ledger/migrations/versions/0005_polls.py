"""What the reconciler asked Qlara's status API about each message: ``polls``.

One row per message polled: how many times, when it may be polled next (the backoff), and
the last answer's result. Deleted with its message by purge.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ledger.timestamps import UTCDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "polls",
        sa.Column("message_id", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_at", UTCDateTime(), nullable=False),
        sa.Column("last_result", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_polls")),
    )


def downgrade() -> None:
    op.drop_table("polls")
