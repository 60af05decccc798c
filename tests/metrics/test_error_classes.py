"""Error text -> error class: a closed set of at most twelve, never the text itself."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metrics import ERROR_CLASSES, classify_error, delivery_error_class
from qlara.traffic import ERROR_TEXTS


def test_there_are_at_most_twelve_classes_and_other_is_one_of_them() -> None:
    assert len(ERROR_CLASSES) <= 12
    assert len(set(ERROR_CLASSES)) == len(ERROR_CLASSES)
    assert {"other", "unspecified", "expired"} <= set(ERROR_CLASSES)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Invalid destination number", "invalid_number"),
        ("Number not reachable", "unreachable"),
        ("Blocked by carrier", "blocked"),
        ("Subscriber absent", "absent"),
        ("Rejected by operator", "rejected"),
        ("Handset memory full", "handset"),
        ("Validity period expired", "expired"),
        ("Unknown subscriber", "invalid_number"),
        ("Recipient opted out", "blocked"),
        ("Message filtered as SPAM", "spam"),
        ("Insufficient credit", "billing"),
        ("Network error", "carrier"),
        ("  BLOCKED  ", "blocked"),
        ("something nobody documented", "other"),
    ],
)
def test_error_texts_map_to_their_class(text: str, expected: str) -> None:
    assert classify_error(text) == expected


def test_every_error_text_the_traffic_planner_uses_has_a_specific_class() -> None:
    assert all(classify_error(text) not in ("other", "unspecified") for text in ERROR_TEXTS)


@pytest.mark.parametrize("text", [None, "", "   "])
def test_a_missing_error_text_is_unspecified(text: str | None) -> None:
    assert classify_error(text) == "unspecified"


def test_an_expired_status_is_expired_whatever_its_text() -> None:
    assert delivery_error_class("expired", "Number not reachable") == "expired"
    assert delivery_error_class("expired", None) == "expired"
    assert delivery_error_class("error", "Number not reachable") == "unreachable"


@given(st.text())
def test_any_text_gets_one_of_the_classes(text: str) -> None:
    assert classify_error(text) in ERROR_CLASSES
