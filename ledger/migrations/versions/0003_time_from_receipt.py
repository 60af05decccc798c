"""Events and replies timed at their receipt: ``time_from_receipt``.

An event whose own ``timestamp`` was missing or implausible is kept, timed at its receipt;
this column says so, so readers know that ``event_time`` is not Qlara's. Rows recorded
before it are Qlara's times (the receiver refused the others then).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

_TABLES = ("events", "inbound")


def upgrade() -> None:
    # A constant default: SQLite and PostgreSQL add the column without rewriting the table.
    for table in _TABLES:
        op.add_column(
            table,
            sa.Column("time_from_receipt", sa.Boolean(), nullable=False, server_default=sa.false()),
        )


def downgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("time_from_receipt")
