"""Sends the application reports: each event's ``source``, and ``customer_ids``.

- ``events.source``: who reported the event (``webhook``, ``app`` for ``POST /v1/sends``,
  ``poll`` for the reconciler). Rows recorded before it all came from the webhook.
- ``customer_ids``: one row per ``customerMessageId`` seen, with the Qlara ``messageId``
  it was first seen with (``NULL`` while only a send named by it alone is known, recorded
  under a placeholder id). Recording locks these rows before any message row, which is
  what joins such a send to its message exactly once, whichever arrives first.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # A constant default: SQLite and PostgreSQL add the column without rewriting the table.
    op.add_column(
        "events",
        sa.Column("source", sa.String(), nullable=False, server_default="webhook"),
    )
    op.create_table(
        "customer_ids",
        sa.Column("customer_message_id", sa.String(), nullable=False),
        sa.Column("message_id", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("customer_message_id", name=op.f("pk_customer_ids")),
    )


def downgrade() -> None:
    op.drop_table("customer_ids")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("source")
