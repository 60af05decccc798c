"""A seeded ledger (:mod:`tests.dashboard.seed`) on each backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from ledger import Ledger
from ledger.engine import build_engine
from tests.dashboard.seed import seed


@pytest.fixture
def seeded_url(database_url: str) -> str:
    """The URL of a migrated ledger holding the seeded story (SQLite, then PostgreSQL)."""
    Ledger.connect(database_url).close()
    engine = build_engine(database_url)
    try:
        seed(engine)
    finally:
        engine.dispose()
    return database_url


@pytest.fixture
def seeded(seeded_url: str) -> Iterator[Engine]:
    """An engine on the seeded ledger, disposed after the test."""
    engine = build_engine(seeded_url)
    yield engine
    engine.dispose()


@pytest.fixture
def empty_ledger(database_url: str) -> Iterator[Engine]:
    """An engine on a migrated, empty ledger (SQLite, then PostgreSQL), disposed after."""
    Ledger.connect(database_url).close()
    engine = build_engine(database_url)
    yield engine
    engine.dispose()
