"""A migrated ledger on each backend, closed after the test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ledger import Ledger


@pytest.fixture
def ledger(database_url: str) -> Iterator[Ledger]:
    """A freshly migrated ledger (SQLite, then PostgreSQL)."""
    opened = Ledger.connect(database_url)
    yield opened
    opened.close()
