"""Where each message went and what it cost: ``messages.country``, ``operator``, ``price``,
the messages counted by hour and destination (``message_hours``), and the delivered ones'
latencies by hour and bucket (``latency_hours``).

``country`` and ``operator`` come from the message's phone through the numbering plan
(:func:`qlara.destination`); ``price`` sums the prices of the message's distinct events
(the SMS Universal callback carries one per part). Existing messages are filled in here, a
batch at a time. ``message_hours`` (:mod:`ledger.places`) counts the messages by hour of
their last change, destination and status, for the explorer's breakdown by destination
over long windows; it is filled here from the messages recorded so far.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ledger import places
from ledger.timestamps import UTCDateTime
from qlara import destination

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

_BATCH = 5_000


def upgrade() -> None:
    op.add_column("messages", sa.Column("country", sa.String(), nullable=True))
    op.add_column("messages", sa.Column("operator", sa.String(), nullable=True))
    op.add_column("messages", sa.Column("price", sa.Float(), nullable=True))
    messages = sa.table(
        "messages",
        sa.column("message_id", sa.String()),
        sa.column("phone", sa.String()),
        sa.column("country", sa.String()),
        sa.column("operator", sa.String()),
        sa.column("price", sa.Float()),
    )
    events = sa.table(
        "events", sa.column("message_id", sa.String()), sa.column("price", sa.Float())
    )
    conn = op.get_bind()
    priced = (
        sa.select(sa.func.sum(events.c.price))
        .where(events.c.message_id == messages.c.message_id)
        .scalar_subquery()
    )
    conn.execute(sa.update(messages).values(price=priced))
    update = (
        sa.update(messages)
        .where(messages.c.message_id == sa.bindparam("m"))
        .values(country=sa.bindparam("c"), operator=sa.bindparam("o"))
    )
    after = ""
    while True:
        rows = conn.execute(
            sa.select(messages.c.message_id, messages.c.phone)
            .where(messages.c.phone.is_not(None), messages.c.message_id > after)
            .order_by(messages.c.message_id)
            .limit(_BATCH)
        ).all()
        if not rows:
            break
        known = [(m, destination(phone)) for m, phone in rows]
        values = [{"m": m, "c": d.country, "o": d.operator} for m, d in known if d.country]
        if values:
            conn.execute(update, values)
        after = rows[-1].message_id
    op.create_table(
        "message_hours",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("hour", UTCDateTime(), nullable=False),
        sa.Column("country", sa.String(), nullable=True),
        sa.Column("operator", sa.String(), nullable=True),
        sa.Column("channel", sa.String(), nullable=True),
        sa.Column("status", sa.String(), nullable=True),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.Column("spend", sa.Float(), nullable=False),
        sa.Column("latency_total", sa.Float(), nullable=False),
        sa.Column("latency_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_message_hours"),
    )
    op.create_table(
        "latency_hours",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("hour", UTCDateTime(), nullable=False),
        sa.Column("channel", sa.String(), nullable=True),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_latency_hours"),
    )
    places.backfill(conn)
    op.create_index(
        "ix_latency_hours_hour", "latency_hours", ["hour", "channel", "bucket", "messages"]
    )
    op.create_index(
        "ix_message_hours_hour",
        "message_hours",
        [
            "hour",
            "channel",
            "country",
            "operator",
            "status",
            "messages",
            "spend",
            "latency_total",
            "latency_count",
        ],
    )


def downgrade() -> None:
    op.drop_table("latency_hours")
    op.drop_table("message_hours")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("price")
        batch.drop_column("operator")
        batch.drop_column("country")
