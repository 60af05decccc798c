"""An index on the last four characters of each message's phone: ``ix_messages_phone_tail``.

The explorer finds a message by the trailing digits of its number; without this index that
reads every phone of the ledger (0.9 s over a week's messages on SQLite). The expression is
the same on both backends (``substr(phone, length(phone) - 3, 4)``) and the queries use it
as written in ``ledger.schema.PHONE_TAIL``, so both planners match it to the index.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    phone: sa.ColumnClause[str] = sa.column("phone", sa.String())
    op.create_index(
        "ix_messages_phone_tail",
        "messages",
        [sa.func.substr(phone, sa.func.length(phone) - 3, 4)],
    )


def downgrade() -> None:
    op.drop_index("ix_messages_phone_tail", table_name="messages")
