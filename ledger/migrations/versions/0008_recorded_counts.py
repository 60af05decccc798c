"""What the workers counted, kept in the ledger's own transactions: ``recorded_counts``.

One row per (owner, writer, metric, label values): the owner is one host's metrics
directory, the writer one worker process of it. Each recording transaction adds what it
counted, so a scrape reads counters that match the ledger exactly whatever crashed.
Starts empty: the counters start again from 0 (a reset, which ``rate`` and ``increase``
take in their stride).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "recorded_counts",
        sa.Column("owner", sa.String(), nullable=False),
        sa.Column("writer", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(), nullable=False),
        sa.Column("label_a", sa.String(), nullable=False),
        sa.Column("label_b", sa.String(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "owner", "writer", "metric", "label_a", "label_b", name=op.f("pk_recorded_counts")
        ),
    )


def downgrade() -> None:
    op.drop_table("recorded_counts")
