"""Per-minute event counts (``event_minutes``): kept by the writers, compacted, migrated,
purged, and always equal to counting the events themselves."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import Engine, func, insert, select

from ledger import Ledger
from ledger.engine import WRITE_OPTION, build_engine
from ledger.migrate import alembic_config
from ledger.rollup import COMPACT_AFTER, minute_of
from ledger.schema import event_minutes, events
from tests.ledger.samples import event, receipt

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
#: Well inside the span a compaction at NOW looks at.
EARLIER = NOW - timedelta(minutes=30)

Key = tuple[datetime, str | None, str]


def _rollup(engine: Engine) -> tuple[Counter[Key], Counter[Key]]:
    """(each key's summed count, each key's number of rows)."""
    sums: Counter[Key] = Counter()
    rows: Counter[Key] = Counter()
    with engine.connect() as conn:
        for minute, channel, status, n in conn.execute(
            select(
                event_minutes.c.minute,
                event_minutes.c.channel,
                event_minutes.c.status,
                event_minutes.c.events,
            )
        ):
            sums[minute, channel, status] += n
            rows[minute, channel, status] += 1
    return sums, rows


def _counted_from_events(engine: Engine) -> Counter[Key]:
    counted: Counter[Key] = Counter()
    with engine.connect() as conn:
        for received_at, channel, status in conn.execute(
            select(events.c.received_at, events.c.channel, events.c.status)
        ):
            counted[minute_of(received_at), channel, status] += 1
    return counted


def test_writers_count_each_new_event_once_by_minute_channel_and_status(
    ledger: Ledger, database_url: str
) -> None:
    first = EARLIER + timedelta(seconds=10)
    ledger.record(receipt(event("m-1", "sent", 0), event("m-2", "sent", 0), received_at=first))
    # a duplicate of a stored event, a new one, and one without a channel, a minute later
    ledger.record_many(
        [
            receipt(event("m-1", "sent", 0), received_at=first + timedelta(minutes=1)),
            receipt(
                event("m-1", "delivered", 5),
                event("m-1", "delivered", 5),
                event("m-3", "sent", 1, channel=None),
                received_at=first + timedelta(minutes=1, seconds=30),
            ),
        ]
    )
    engine = build_engine(database_url)
    try:
        sums, _ = _rollup(engine)
        assert sums == {
            (minute_of(first), "sms", "sent"): 2,
            (minute_of(first) + timedelta(minutes=1), "sms", "delivered"): 1,
            (minute_of(first) + timedelta(minutes=1), None, "sent"): 1,
        }
        assert sums == _counted_from_events(engine)
    finally:
        engine.dispose()


def test_compaction_leaves_one_row_per_passed_minute_and_the_same_counts(
    ledger: Ledger, database_url: str
) -> None:
    recent = NOW - COMPACT_AFTER + timedelta(seconds=30)  # not passed long enough
    for n in range(6):
        ledger.record(receipt(event(f"a-{n}", "sent", n), received_at=EARLIER))
        ledger.record(receipt(event(f"b-{n}", "sent", n), received_at=recent))
    engine = build_engine(database_url)
    try:
        before, rows_before = _rollup(engine)

        removed = ledger.compact_minutes(NOW)

        after, rows_after = _rollup(engine)
        assert removed == 5
        assert after == before == _counted_from_events(engine)
        assert rows_before[minute_of(EARLIER), "sms", "sent"] == 6
        assert rows_after[minute_of(EARLIER), "sms", "sent"] == 1
        assert rows_after[minute_of(recent), "sms", "sent"] == 6
        assert ledger.compact_minutes(NOW) == 0
    finally:
        engine.dispose()


def test_counts_stay_exact_while_writers_and_two_compactions_run_at_once(
    ledger: Ledger, database_url: str
) -> None:
    errors: list[BaseException] = []
    writing = threading.Event()

    def write(worker: int) -> None:
        try:
            for n in range(40):
                batch = [
                    receipt(
                        event(f"w{worker}-{n}", "sent", n),
                        event(f"w{worker}-{n}", "delivered", n + 3, channel="rcs"),
                        received_at=EARLIER + timedelta(seconds=n % 50),
                    )
                ]
                ledger.record_many(batch)
        except BaseException as exc:
            errors.append(exc)

    def compact() -> None:
        try:
            while writing.is_set():
                ledger.compact_minutes(NOW)
        except BaseException as exc:
            errors.append(exc)

    writing.set()
    writers = [threading.Thread(target=write, args=(w,)) for w in range(3)]
    compactors = [threading.Thread(target=compact) for _ in range(2)]
    for thread in writers + compactors:
        thread.start()
    for thread in writers:
        thread.join()
    writing.clear()
    for thread in compactors:
        thread.join()
    ledger.compact_minutes(NOW)

    assert errors == []
    engine = build_engine(database_url)
    try:
        sums, rows = _rollup(engine)
        assert sums == _counted_from_events(engine)
        assert sums[minute_of(EARLIER), "sms", "sent"] == 120
        assert sums[minute_of(EARLIER), "rcs", "delivered"] == 120
        assert set(rows.values()) == {1}
    finally:
        engine.dispose()


def test_purge_drops_the_counts_of_the_minutes_wholly_before_the_cut_off(
    ledger: Ledger, database_url: str
) -> None:
    old = EARLIER - timedelta(minutes=10)
    ledger.record(receipt(event("old", "sent", 0), received_at=old))
    ledger.record(receipt(event("new", "sent", 0), received_at=EARLIER + timedelta(seconds=5)))

    ledger.purge(EARLIER + timedelta(seconds=30))

    engine = build_engine(database_url)
    try:
        sums, _ = _rollup(engine)
        # The cut-off's own minute keeps its count, though its event went.
        assert sums == {(minute_of(EARLIER), "sms", "sent"): 1}
    finally:
        engine.dispose()


def test_the_migration_counts_the_events_recorded_before_it(database_url: str) -> None:
    engine = build_engine(database_url)
    try:
        config = alembic_config()
        with engine.execution_options(**{WRITE_OPTION: True}).begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0001")
            conn.execute(
                insert(events),
                [
                    _event_row(f"m-{n}", status, received_at, channel)
                    for n, (status, received_at, channel) in enumerate(
                        [
                            ("sent", EARLIER + timedelta(seconds=59, microseconds=999999), "sms"),
                            ("sent", EARLIER, "sms"),
                            ("delivered", EARLIER + timedelta(minutes=1), None),
                            ("sent", EARLIER + timedelta(hours=1, seconds=1), "whatsapp"),
                        ]
                    )
                ],
            )

        Ledger(engine).migrate()

        sums, _ = _rollup(engine)
        assert sums == {
            (EARLIER, "sms", "sent"): 2,
            (EARLIER + timedelta(minutes=1), None, "delivered"): 1,
            (EARLIER + timedelta(hours=1), "whatsapp", "sent"): 1,
        }
        with engine.connect() as conn:
            # Stored like any other datetime: range comparisons find the backfilled minutes.
            found = conn.execute(
                select(func.sum(event_minutes.c.events)).where(
                    event_minutes.c.minute >= EARLIER,
                    event_minutes.c.minute < EARLIER + timedelta(minutes=1),
                )
            ).scalar_one()
        assert found == 2
    finally:
        engine.dispose()


def _event_row(
    message_id: str, status: str, received_at: datetime, channel: str | None
) -> dict[str, object]:
    return {
        "message_id": message_id,
        "status": status,
        "event_time": received_at,
        "part": 1,
        "total_parts": 1,
        "channel": channel,
        "shape": "g",
        "naive_time": False,
        "raw": b"{}",
        "received_at": received_at,
        "receipt_id": f"r-{message_id}",
        "duplicates": 0,
    }
