"""Phone numbers are normalised for search and masked for logs."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qlara import mask_phone, mask_phones, normalise_phone


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("+39 390 123-4567", "+393901234567"),
        ("0039 3901234567", "+393901234567"),
        ("(02) 1234.567", "021234567"),
    ],
)
def test_normalising_keeps_only_digits_and_an_international_plus(given: str, expected: str) -> None:
    assert normalise_phone(given) == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("+393901234567", "+39******4567"),
        ("3901234567", "******4567"),
        ("+123", "+*23"),
        (None, None),
    ],
)
def test_masking_leaves_the_country_and_the_last_four_digits(
    given: str | None, expected: str | None
) -> None:
    assert mask_phone(given) == expected


def test_phones_inside_a_payload_are_masked_and_nothing_else_is() -> None:
    payload = {
        "messageId": "sim-13989b-0000001",
        "customerMessageId": "order-42",
        "phoneNumber": "+393901234567",
        "destination": "+39 390 123 4567",
        "error": "Number +393901234567 unreachable since 2025-03-01 10:00, ref 12345",
        "text": "call me on 333 123 4567",
        "timestamp": "2025-03-01T10:00:00Z",
        "price": 0.035,
        "statusCode": 6,
        "extra": [{"source": "+447700900123"}, "id 123e4567-e89b-12d3-a456-426614174000"],
    }

    masked = mask_phones(payload)

    assert masked["phoneNumber"] == masked["destination"] == "+39******4567"
    assert masked["error"] == "Number +39******4567 unreachable since 2025-03-01 10:00, ref 12345"
    assert masked["text"] == "call me on ******4567"
    assert masked["extra"] == [
        {"source": "+44******0123"},
        "id 123e4567-e89b-12d3-a456-426614174000",
    ]
    # ids, times and numbers are as sent
    for key in ("messageId", "customerMessageId", "timestamp", "price", "statusCode"):
        assert masked[key] == payload[key]
    assert "3901234567" not in json.dumps(masked)


@given(st.from_regex(r"\+?[1-9]\d{6,14}", fullmatch=True))
def test_any_phone_in_any_text_keeps_only_its_last_four_digits(phone: str) -> None:
    masked = mask_phones(f"reply from {phone}, thanks")
    assert masked.startswith("reply from ")
    assert masked.endswith(", thanks")
    assert phone not in masked
    assert masked.count("*") >= len(phone.lstrip("+")) - 6
