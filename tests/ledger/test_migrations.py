"""Schema management and connection settings."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text

from ledger import Ledger, default_sqlite_url
from ledger.engine import build_engine, normalise_url
from ledger.schema import metadata
from tests.ledger.samples import event, receipt


def test_migrating_twice_is_harmless(ledger: Ledger) -> None:
    ledger.record(receipt(event("m-1", "sent", 0)))

    ledger.migrate()
    ledger.migrate()

    assert ledger.get_message("m-1") is not None


def test_processes_starting_at_once_all_migrate_without_error(database_url: str) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def start_up() -> None:
        opened = Ledger(build_engine(database_url))
        try:
            start.wait()
            opened.migrate()
        except BaseException as exc:
            errors.append(exc)
        finally:
            opened.close()

    threads = [threading.Thread(target=start_up) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    ledger = Ledger.connect(database_url, migrate=False)
    ledger.record(receipt(event("m-1", "sent", 0)))
    assert ledger.counts().messages == 1
    ledger.close()


def test_the_migrations_build_exactly_the_tables_the_code_uses(
    ledger: Ledger, database_url: str
) -> None:
    engine = create_engine(normalise_url(database_url))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            differences = compare_metadata(context, metadata)
    finally:
        engine.dispose()

    assert differences == []


def test_sqlite_runs_in_wal_mode_with_full_sync(sqlite_url: str) -> None:
    engine = build_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            journal = conn.execute(text("PRAGMA journal_mode")).scalar()
            synchronous = conn.execute(text("PRAGMA synchronous")).scalar()
            busy = conn.execute(text("PRAGMA busy_timeout")).scalar()
    finally:
        engine.dispose()

    assert (journal, synchronous, busy) == ("wal", 2, 5000)  # 2 is FULL


def test_the_default_sqlite_url_points_into_the_data_dir(tmp_path: Path) -> None:
    assert default_sqlite_url(tmp_path) == f"sqlite:///{tmp_path}/ledger.sqlite3"


@pytest.mark.parametrize(
    "url",
    [
        "postgres://u:p@db:5432/ledger",
        "postgresql://u:p@db:5432/ledger",
        "postgresql+psycopg://u:p@db:5432/ledger",
    ],
)
def test_every_postgresql_spelling_uses_psycopg_3(url: str) -> None:
    parsed = normalise_url(url)

    assert parsed.drivername == "postgresql+psycopg"
    assert (parsed.host, parsed.port, parsed.database) == ("db", 5432, "ledger")


def test_an_unsupported_database_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported ledger database URL scheme"):
        Ledger.connect("mysql://u@db/ledger")


def test_events_and_replies_recorded_before_0003_read_as_timed_by_qlara(
    database_url: str,
) -> None:
    from alembic import command
    from sqlalchemy import insert, select

    from ledger.engine import WRITE_OPTION
    from ledger.migrate import alembic_config
    from ledger.schema import events, inbound
    from tests.ledger.samples import T0

    engine = build_engine(database_url)
    try:
        # Given a ledger at 0002 holding an event and a reply
        config = alembic_config()
        with engine.execution_options(**{WRITE_OPTION: True}).begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0002")
            common = {"event_time": T0, "naive_time": False, "raw": b"{}", "received_at": T0}
            common |= {"receipt_id": "r-1", "duplicates": 0}
            conn.execute(
                insert(events),
                [{"message_id": "m-1", "status": "sent", "part": 1, "total_parts": 1,
                  "shape": "A", **common}],
            )  # fmt: skip
            conn.execute(insert(inbound), [{"inbound_id": "i-1", **common}])

        # When it is migrated
        Ledger(engine).migrate()

        # Then both keep Qlara's time
        with engine.connect() as conn:
            flags = [
                conn.execute(select(table.c.time_from_receipt)).scalar_one()
                for table in (events, inbound)
            ]
        assert flags == [False, False]
    finally:
        engine.dispose()


def test_a_migration_is_one_log_line_and_a_current_ledger_none(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    from alembic.script import ScriptDirectory
    from structlog.testing import capture_logs

    from ledger.migrate import alembic_config

    engine = build_engine(database_url)
    try:
        with capture_logs() as first, caplog.at_level("INFO"):
            Ledger(engine).migrate()
        with capture_logs() as again:
            Ledger(engine).migrate()
    finally:
        engine.dispose()

    migrated = [e for e in first if e["log_level"] == "info"]
    assert [(e["event"], e["from_revision"]) for e in migrated] == [("ledger.migrated", None)]
    assert migrated[0]["to"] == ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert [r.getMessage() for r in caplog.records if r.name.startswith("alembic")] == []
    assert [e for e in again if e["log_level"] == "info"] == []
