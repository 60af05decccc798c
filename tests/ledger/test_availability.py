"""Transient database failures become LedgerUnavailable; programming errors do not."""

from __future__ import annotations

import secrets
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy.exc import DBAPIError

from ledger import Ledger, LedgerError, LedgerRefused, LedgerUnavailable
from tests.ledger.samples import PHONE, event, receipt


def _dead_url(backend: str, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'missing-directory' / 'ledger.sqlite3'}"
    return "postgresql://postgres@127.0.0.1:1/nothing"  # port 1: nothing listens


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_dead_database_is_unavailable(backend: str, tmp_path: Path) -> None:
    url = _dead_url(backend, tmp_path)

    with pytest.raises(LedgerUnavailable):
        Ledger.connect(url)

    ledger = Ledger.connect(url, migrate=False)
    with pytest.raises(LedgerUnavailable):
        ledger.ping()
    with pytest.raises(LedgerUnavailable):
        ledger.record(receipt(event("m-1", "sent", 0)))
    ledger.close()


def test_unavailable_is_a_ledger_error() -> None:
    assert issubclass(LedgerUnavailable, LedgerError)


def test_a_live_database_answers_ping(ledger: Ledger) -> None:
    ledger.ping()


def test_an_unmigrated_database_is_a_programming_error_not_unavailable(
    database_url: str,
) -> None:
    ledger = Ledger.connect(database_url, migrate=False)
    try:
        # SQLite says "no such table: receipts", PostgreSQL 'relation "receipts" does not exist'
        with pytest.raises(DBAPIError, match="receipts"):
            ledger.record(receipt(event("m-1", "sent", 0)))
    finally:
        ledger.close()


def test_a_locked_sqlite_database_is_unavailable_and_the_error_names_no_phone(
    sqlite_url: str,
) -> None:
    # Given another process holding SQLite's write lock past the busy timeout
    ledger = Ledger.connect(sqlite_url)
    holder = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        # When a receipt is recorded, it waits for the lock, then gives up as unavailable
        with pytest.raises(LedgerUnavailable) as raised:
            ledger.record(receipt(event("m-1", "sent", 0, phone=PHONE)))
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    # And neither the error nor its cause shows the phone number
    assert "locked" in str(raised.value)
    assert PHONE not in str(raised.value)
    assert PHONE not in str(raised.value.__cause__)
    # Once the lock is gone the same receipt records normally
    ledger.record(receipt(event("m-1", "sent", 0)))
    assert ledger.counts().events == 1
    ledger.close()


def test_a_value_postgresql_cannot_store_is_refused_without_the_value(postgres_url: str) -> None:
    ledger = Ledger.connect(postgres_url, migrate=True)
    try:
        # A receipt built past the parser, with a NUL in its error text and phone number
        bad = receipt(event("m-nul", "error", error="bad\x00+393901234567"))
        with pytest.raises(LedgerRefused) as refused:
            ledger.record_many([bad])
        assert str(refused.value).startswith("DataError: ")
        assert "+39" not in str(refused.value)
        # nothing of the refused transaction stays
        assert ledger.counts().receipts == 0
    finally:
        ledger.close()


def test_a_value_past_a_postgresql_limit_is_refused_not_retried_forever(
    postgres_url: str,
) -> None:
    ledger = Ledger.connect(postgres_url, migrate=True)
    try:
        # A receipt built past the parser (which caps ids at 200 characters), with an id
        # too large for a btree index row even compressed: SQLSTATE 54000, which the driver
        # files under OperationalError although no retry will ever store it
        huge = secrets.token_hex(6000)
        with pytest.raises(LedgerRefused) as refused:
            ledger.record_many([receipt(event(huge, "delivered"))])
        assert str(refused.value).endswith("a value exceeds a limit")
        assert huge[:40] not in str(refused.value)
        assert ledger.counts().receipts == 0
    finally:
        ledger.close()
