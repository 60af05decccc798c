"""Webhook statistics: windows by receipt time, pending messages, per-channel last event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine, func, select, text

from ledger import Horizon, Ledger, stats
from ledger.engine import normalise_url
from ledger.schema import messages, pending_predicate
from ledger.stats import pending_by_channel
from tests.ledger.samples import T0, event, receipt, reply

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def _at(minutes_ago: float) -> datetime:
    return NOW - timedelta(minutes=minutes_ago)


def test_event_windows_count_distinct_events_by_receipt_time(ledger: Ledger) -> None:
    ledger.record(receipt(event("m-1", "sent", 0), received_at=_at(2)))
    ledger.record(receipt(event("m-2", "sent", 0), received_at=_at(10)))
    ledger.record(receipt(event("m-3", "sent", 0), received_at=_at(30)))
    ledger.record(receipt(event("m-4", "sent", 0), received_at=_at(120)))
    ledger.record(receipt(event("m-1", "sent", 0), received_at=_at(1)))  # a duplicate

    stats = ledger.webhook_stats(now=NOW)

    assert (stats.events_last_5m, stats.events_last_15m, stats.events_last_60m) == (1, 2, 3)
    assert (stats.events_total, stats.duplicates_total) == (4, 1)


def test_pending_counts_sent_messages_without_a_final_status(ledger: Ledger) -> None:
    ledger.record(receipt(event("m-1", "sent", 0)))  # pending since T0
    ledger.record(receipt(event("m-2", "sent", 60), event("m-2", "received", 61)))  # pending
    ledger.record(receipt(event("m-3", "sent", 0), event("m-3", "delivered", 3)))  # final
    ledger.record(receipt(event("m-4", "received", 0)))  # never reported sent

    stats = ledger.webhook_stats(now=T0 + timedelta(minutes=10))

    assert stats.pending == 2
    assert stats.oldest_pending_age_seconds == 600.0


def test_nothing_pending_has_no_oldest_age(ledger: Ledger) -> None:
    stats = ledger.webhook_stats(now=NOW)

    assert (stats.pending, stats.oldest_pending_age_seconds) == (0, None)
    assert stats.last_event_at == {}


def test_last_event_at_is_per_channel_with_channelless_events_under_other(
    ledger: Ledger,
) -> None:
    ledger.record(receipt(event("m-1", "sent", 0, channel="sms"), received_at=_at(30)))
    ledger.record(receipt(event("m-2", "sent", 0, channel="sms"), received_at=_at(3)))
    ledger.record(receipt(event("m-3", "read", 0, channel="whatsapp"), received_at=_at(7)))
    ledger.record(receipt(event("m-4", "sent", 0, channel=None), received_at=_at(9)))

    stats = ledger.webhook_stats(now=NOW)

    assert stats.last_event_at == {"sms": _at(3), "whatsapp": _at(7), "other": _at(9)}


def test_inbound_replies_are_totalled_apart(ledger: Ledger) -> None:
    ledger.record(receipt(inbound=(reply("in-1"), reply("in-2"))))

    stats = ledger.webhook_stats(now=NOW)

    assert (stats.inbound_total, stats.events_total) == (2, 0)


def test_pending_is_answered_from_the_partial_index(ledger: Ledger, database_url: str) -> None:
    # The planner may prefer a scan of a tiny table; forbid that to see which index serves.
    engine = create_engine(normalise_url(database_url))
    query = select(func.count(), func.min(messages.c.sent_at)).where(pending_predicate())
    compiled = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SET enable_seqscan = off"))
                plan = conn.execute(text(f"EXPLAIN {compiled}")).scalars().all()
            else:
                plan = [row[-1] for row in conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))]
    finally:
        engine.dispose()
    assert any("ix_messages_pending" in line for line in plan), plan


def test_backlog_groups_pending_messages_by_channel_with_the_oldest_sent_time(
    ledger: Ledger,
) -> None:
    ledger.record(receipt(event("m-1", "sent", 0, channel="sms")))
    ledger.record(receipt(event("m-2", "sent", 30, channel="sms")))
    ledger.record(receipt(event("m-3", "sent", 10, channel="whatsapp")))
    ledger.record(receipt(event("m-4", "sent", 5, channel=None)))
    ledger.record(receipt(event("m-5", "sent", 0, channel="rcs"), event("m-5", "delivered", 2)))
    ledger.add_dead_letter(payload="{}", reason="UndecodableReceipt: bad", attempts=1)
    redriven = ledger.add_dead_letter(payload="{}", reason="UndecodableReceipt: bad", attempts=1)
    ledger.mark_redriven(redriven)

    backlog = ledger.backlog()

    assert backlog.pending == {
        "sms": (2, T0),
        "whatsapp": (1, T0 + timedelta(seconds=10)),
        None: (1, T0 + timedelta(seconds=5)),
    }
    assert backlog.dead_letters == 1


def test_backlog_is_empty_on_an_empty_ledger(ledger: Ledger) -> None:
    backlog = ledger.backlog()

    assert (backlog.pending, backlog.dead_letters) == ({}, 0)


def test_backlog_reads_pending_messages_through_the_partial_index(
    ledger: Ledger, database_url: str
) -> None:
    query = pending_by_channel()
    engine = create_engine(normalise_url(database_url))
    compiled = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SET enable_seqscan = off"))
                plan = conn.execute(text(f"EXPLAIN {compiled}")).scalars().all()
            else:
                plan = [row[-1] for row in conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))]
    finally:
        engine.dispose()
    assert any("ix_messages_pending" in line for line in plan), plan


def test_a_horizon_splits_pending_from_unresolved_per_channel(ledger: Ledger) -> None:
    # Given messages sent long ago and lately on channels with different horizons
    now = T0 + timedelta(hours=30)
    ledger.record(receipt(event("old-sms", "sent", 0, channel="sms")))  # 30 h: within 48 h
    ledger.record(receipt(event("old-wa", "sent", 0, channel="whatsapp")))  # 30 h > 24 h
    ledger.record(receipt(event("new-wa", "sent", 3600 * 20, channel="whatsapp")))  # 10 h
    ledger.record(receipt(event("old-tg", "sent", 0, channel="telegram")))  # default 12 h
    ledger.record(receipt(event("old-none", "sent", 0, channel=None)))  # default 12 h
    ledger.record(receipt(event("done", "sent", 0, channel="whatsapp"), event("done", "error", 9)))
    horizon = Horizon(
        by_channel={"sms": timedelta(hours=48), "whatsapp": timedelta(hours=24)},
        default=timedelta(hours=12),
    )

    with ledger._engine.begin() as conn:
        backlog = stats.backlog(conn, horizon, now)

    assert backlog.pending == {
        "sms": (1, T0),
        "whatsapp": (1, T0 + timedelta(hours=20)),
    }
    assert backlog.unresolved == {"whatsapp": 1, "telegram": 1, None: 1}
    # and without a horizon, every one is pending, as before
    assert sum(n for n, _ in ledger.backlog().pending.values()) == 5


def test_the_split_by_horizon_still_reads_the_partial_index(
    ledger: Ledger, database_url: str
) -> None:
    horizon = Horizon(by_channel={"sms": timedelta(hours=1)}, default=timedelta(hours=2))
    query = pending_by_channel(horizon, T0)
    engine = create_engine(normalise_url(database_url))
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                # The cut-offs as the driver binds them (typed), not as literal text
                compiled = query.compile(engine)
                conn.execute(text("SET enable_seqscan = off"))
                plan = [
                    row[0] for row in conn.exec_driver_sql(f"EXPLAIN {compiled}", compiled.params)
                ]
            else:
                literal = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
                plan = [row[-1] for row in conn.execute(text(f"EXPLAIN QUERY PLAN {literal}"))]
    finally:
        engine.dispose()
    assert any("ix_messages_pending" in line for line in plan), plan
