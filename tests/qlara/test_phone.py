"""Phone numbers are normalised for search and masked for logs."""

import pytest

from qlara import mask_phone, normalise_phone


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
