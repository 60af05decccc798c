"""Which countries the worker names in the metrics' country label."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import metrics
from ledger import Ledger
from qlara import parse_country_labels
from tests.ledger.samples import event, receipt
from workers import WorkerConfig
from workers.connection import LedgerConnection
from workers.countries import CountryLabels


@pytest.fixture
def connection(config: WorkerConfig) -> Iterator[LedgerConnection]:
    opened = LedgerConnection(config.database_url)
    yield opened
    opened.close()
    metrics.label_countries([])


def test_the_most_frequent_countries_are_named_the_others_are_not(
    ledger: Ledger, connection: LedgerConnection
) -> None:
    phones = ["+393471234567"] * 3 + ["+33600000001"] * 2 + ["+4915123456789"]
    for n, phone in enumerate(phones):
        ledger.record(receipt(event(f"m-{n}", "sent", 0, phone=phone)))

    assert CountryLabels(connection, 2).refresh() == {"IT", "FR"}
    assert metrics.country_label("DE") == "other"
    assert CountryLabels(connection, ("de",)).refresh() == {"DE"}
    assert metrics.country_label("IT") == "other"
    assert CountryLabels(connection, 0).refresh() == frozenset()


@pytest.mark.parametrize(
    ("text", "expected"),
    [("top:10", 10), (" TOP:0 ", 0), ("it, fr,IT", ("IT", "FR")), ("", ())],
)
def test_country_labels_are_top_n_or_iso_codes(text: str, expected: object) -> None:
    assert parse_country_labels(text) == expected


@pytest.mark.parametrize(
    ("text", "named"),
    [("top:51", "top:N wants N from 0 to 50"), ("top:x", "top:N"), ("IT,XX", "XX")],
)
def test_a_wrong_country_labels_value_says_what_is_wrong(text: str, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        parse_country_labels(text)
