"""The ledger's tables (SQLAlchemy Core). Alembic migrations build exactly these.

- ``receipts``: every receipt id recorded, so a receipt delivered twice is recorded once.
- ``events``: one row per distinct status event, keyed by (message_id, status, event_time,
  part); ``duplicates`` counts how many more times it arrived.
- ``messages``: one row per message, its state derived from all its events by
  :func:`qlara.reduce_state`, with its destination's country and operator
  (:func:`qlara.destination`) and its price (the sum of its distinct events');
  ``latency_observed_at`` is set once, by compare-and-set, when the sent -> final latency
  was first reported.
- ``inbound``: replies from recipients, kept apart from statuses.
- ``customer_ids``: each ``customerMessageId`` seen and the ``messageId`` it was first seen
  with (``NULL`` while only a send named by it alone is known): see :mod:`ledger.joining`.
- ``polls``: what the reconciler asked Qlara's status API about each message, and when it
  may ask again (see :mod:`ledger.polling`).
- ``channels``: every channel name seen, so per-channel statistics need no table scan.
- ``event_minutes``: distinct events counted by minute of receipt, channel and status, for
  charts over long windows. Writers append one row per (minute, channel, status) of the
  events each transaction inserts, so they never wait on each other's rows; the workers
  compact a minute's rows into one once it has passed (:mod:`ledger.rollup`), and the sum
  of a key's rows is its count.
- ``message_hours``: messages counted by hour of their last change (``updated_at``),
  destination, channel and status, with their spend and delivered latencies, for the
  explorer's breakdown by destination over long windows (:mod:`ledger.places`). Each
  transaction that changes messages appends what it moved (a changed message leaves its
  old hour's key and joins its new one); the workers compact the rows of each key.
- ``latency_hours``: delivered messages' sent -> delivered latencies, by the same hour, channel
  and a logarithmic bucket (:func:`ledger.places.latency_bucket`), kept the same way: the
  explorer's percentiles over windows too large to read every latency.
- ``dead_letters``: receipts the workers gave up on, with the reason, until redriven.
- ``recorded_counts``: what the workers counted as they recorded (events by channel and
  status, duplicates, error classes...), by owner (one host's metrics directory) and writer
  (one worker process of it), added in the same transaction as what it counts, so the
  counters a scrape reads from it are exact across any crash (:mod:`ledger.counting`).

Lookups of a message's events use the unique key, whose leading column is ``message_id``.

Every write to ``events`` of a message happens while its ``messages`` row is locked (see
:mod:`ledger.recording`), which is what keeps the derived state exact under concurrency.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    false,
    func,
    literal_column,
)
from sqlalchemy.sql.elements import ColumnElement

from ledger.timestamps import UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

receipts = Table(
    "receipts",
    metadata,
    Column("receipt_id", String, primary_key=True),
    Column("received_at", UTCDateTime, nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    Index(None, "recorded_at"),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String, nullable=False),
    Column("status", String, nullable=False),
    Column("event_time", UTCDateTime, nullable=False),
    Column("part", Integer, nullable=False),
    Column("total_parts", Integer, nullable=False),
    Column("status_code", Integer),
    Column("channel", String),
    Column("customer_message_id", String),
    Column("phone", String),
    Column("error", Text),
    Column("shape", String(1), nullable=False),
    Column("price", Float),
    Column("naive_time", Boolean, nullable=False),
    Column("raw", LargeBinary, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("receipt_id", String, nullable=False),
    Column("duplicates", Integer, nullable=False),
    Column("time_from_receipt", Boolean, nullable=False, server_default=false()),
    Column("source", String, nullable=False, server_default="webhook"),
    UniqueConstraint("message_id", "status", "event_time", "part"),
    Index(None, "received_at"),
    Index(None, "channel", "received_at"),
)

#: What the explorer's outcomes read of a message, besides its status and update time.
_OUTCOME_COLUMNS = ("channel", "is_final", "latency_seconds")

messages = Table(
    "messages",
    metadata,
    Column("message_id", String, primary_key=True),
    Column("status", String),
    Column("status_time", UTCDateTime),
    Column("is_final", Boolean, nullable=False),
    Column("sent_at", UTCDateTime),
    Column("final_at", UTCDateTime),
    Column("read_at", UTCDateTime),
    Column("channel", String),
    Column("customer_message_id", String),
    Column("phone", String),
    Column("error", Text),
    Column("latency_seconds", Float),
    Column("latency_observed_at", UTCDateTime),
    # From the phone through the numbering plan (qlara.destination); price sums the prices
    # of the message's distinct events.
    Column("country", String),
    Column("operator", String),
    Column("price", Float),
    Column("event_count", Integer, nullable=False),
    Column("duplicate_count", Integer, nullable=False),
    Column("first_received_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "updated_at", "message_id"),
    Index(None, "customer_message_id"),
    Index(None, "phone"),
    # Carries what the explorer's outcomes read, so a day of messages of one status is
    # counted, and its latencies read, from the index alone.
    Index("ix_messages_status_updated_at", "status", "updated_at", *_OUTCOME_COLUMNS),
    Index(None, "channel", "updated_at"),
)

#: How many trailing characters of the phone :data:`PHONE_TAIL` holds.
PHONE_TAIL_DIGITS = 4
#: The last four characters of the phone, the same expression on SQLite and PostgreSQL:
#: the explorer finds a number by its trailing digits through this index
#: (``ix_messages_phone_tail``) instead of reading every phone.
#: Its numbers are written into the SQL, never bound: a planner matches a query to an
#: expression index only when the query's expression is the index's, word for word.
PHONE_TAIL = func.substr(
    messages.c.phone,
    func.length(messages.c.phone) - literal_column(str(PHONE_TAIL_DIGITS - 1)),
    literal_column(str(PHONE_TAIL_DIGITS)),
)
Index("ix_messages_phone_tail", PHONE_TAIL)


def pending_predicate() -> ColumnElement[bool]:
    """A message is pending when it was sent and has no final status yet.

    The same expression defines the partial index ``ix_messages_pending`` and the
    ``webhook_stats`` query, so the planner can answer from the index alone.
    """
    return and_(messages.c.is_final == false(), messages.c.sent_at.is_not(None))


Index(
    "ix_messages_pending",
    messages.c.sent_at,
    postgresql_where=pending_predicate(),
    sqlite_where=pending_predicate(),
)

inbound = Table(
    "inbound",
    metadata,
    Column("inbound_id", String, primary_key=True),
    Column("event_time", UTCDateTime, nullable=False),
    Column("channel", String),
    Column("source", String),
    Column("destination", String),
    Column("text", Text),
    Column("message_type", String),
    Column("naive_time", Boolean, nullable=False),
    Column("raw", LargeBinary, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("receipt_id", String, nullable=False),
    Column("duplicates", Integer, nullable=False),
    Column("time_from_receipt", Boolean, nullable=False, server_default=false()),
    Index(None, "received_at"),
)

customer_ids = Table(
    "customer_ids",
    metadata,
    Column("customer_message_id", String, primary_key=True),
    Column("message_id", String),
)

polls = Table(
    "polls",
    metadata,
    Column("message_id", String, primary_key=True),
    Column("attempts", Integer, nullable=False),
    Column("next_at", UTCDateTime, nullable=False),
    Column("last_result", String, nullable=False),
)

channels = Table(
    "channels",
    metadata,
    Column("channel", String, primary_key=True),
    Column("first_seen_at", UTCDateTime, nullable=False),
)

event_minutes = Table(
    "event_minutes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("minute", UTCDateTime, nullable=False),
    Column("channel", String),
    Column("status", String, nullable=False),
    Column("events", Integer, nullable=False),
    # Covering: a window's counts are read from the index alone.
    Index(None, "minute", "channel", "status", "events"),
)

message_hours = Table(
    "message_hours",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("hour", UTCDateTime, nullable=False),
    Column("country", String),
    Column("operator", String),
    Column("channel", String),
    Column("status", String),
    Column("messages", Integer, nullable=False),
    Column("spend", Float, nullable=False),
    Column("latency_total", Float, nullable=False),
    Column("latency_count", Integer, nullable=False),
    # Covering: a window's hours are summed from the index alone.
    Index(
        "ix_message_hours_hour",
        "hour",
        "channel",
        "country",
        "operator",
        "status",
        "messages",
        "spend",
        "latency_total",
        "latency_count",
    ),
)

latency_hours = Table(
    "latency_hours",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("hour", UTCDateTime, nullable=False),
    Column("channel", String),
    Column("bucket", Integer, nullable=False),
    Column("messages", Integer, nullable=False),
    # Covering: a window's histogram is summed from the index alone.
    Index("ix_latency_hours_hour", "hour", "channel", "bucket", "messages"),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("receipt_id", String),
    Column("payload", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("failed_at", UTCDateTime, nullable=False),
    Column("redriven_at", UTCDateTime),
    Index(None, "redriven_at", "id"),
)

recorded_counts = Table(
    "recorded_counts",
    metadata,
    Column("owner", String, primary_key=True),
    Column("writer", Integer, primary_key=True),
    Column("metric", String, primary_key=True),
    Column("label_a", String, primary_key=True),
    Column("label_b", String, primary_key=True),
    Column("value", BigInteger, nullable=False),
)
