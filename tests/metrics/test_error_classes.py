"""Error text -> error class: a closed set of at most sixteen, never the text itself."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metrics import ERROR_CLASSES, classify_error, delivery_error_class
from metrics.error_classes import DOCUMENTED_TEXTS
from simulator.payloads import ERROR_TEXTS as SIMULATED_TEXTS


def test_there_are_at_most_sixteen_classes_and_other_is_one_of_them() -> None:
    assert len(ERROR_CLASSES) <= 16
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
        ("Recipient is not a WhatsApp user", "not_on_channel"),
        ("RCS not supported by the recipient's device", "not_on_channel"),
        ("Message outside the 24-hour customer service window", "outside_window"),
        ("Re-engagement message: outside 24 hour window", "outside_window"),
        ("Template paused for low quality", "template"),
        ("Template rejected", "template"),
        ("Not delivered", "not_delivered"),
        ("Message undeliverable", "not_delivered"),
        ("Message was not delivered within retention period", "expired"),
        ("something nobody documented", "other"),
    ],
)
def test_error_texts_map_to_their_class(text: str, expected: str) -> None:
    assert classify_error(text) == expected


def test_every_error_text_the_simulators_and_qlaras_documentation_produce_has_a_class() -> None:
    texts = [
        *(text for texts in SIMULATED_TEXTS.values() for text in texts),
        *DOCUMENTED_TEXTS,
    ]
    unclassed = [text for text in texts if classify_error(text) in ("other", "unspecified")]
    assert unclassed == []


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
