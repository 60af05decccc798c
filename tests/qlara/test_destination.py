"""The destination of a number: country and the range's original operator, never the number."""

from __future__ import annotations

import pytest

from qlara import Destination, destination


@pytest.mark.parametrize(
    ("phone", "expected"),
    [
        ("+393471234567", Destination("IT", "Vodafone")),
        ("00393471234567", Destination("IT", "Vodafone")),  # 00 is the international prefix
        ("393471234567", Destination("IT", "Vodafone")),  # digits alone are international
        ("+39 347 123 4567", Destination("IT", "Vodafone")),
        ("+4915123456789", Destination("DE", "T-Mobile")),
        ("+14155550123", Destination("US", None)),  # a plan without operators for this range
        ("+447700900123", Destination("GB", "O2")),  # not valid, but +44 7700 is O2's range
        ("+80012345678", Destination(None, None)),  # non-geographic: no country
        ("12345", Destination(None, None)),  # a short code has no country
        ("not a number", Destination(None, None)),
        ("", Destination(None, None)),
        (None, Destination(None, None)),
    ],
)
def test_a_number_gives_its_country_and_its_range_s_operator(
    phone: str | None, expected: Destination
) -> None:
    assert destination(phone) == expected


@pytest.mark.parametrize(
    "phone",
    [
        "+393471234567",
        "+390669812345",  # the Vatican's range of +39
        "+441534123456",  # Jersey, within +44
        "+447624123456",  # the Isle of Man's mobiles
        "+14155550123",
        "+16135550123",  # Canada, within +1
        "+79161234567",
        "+77011234567",  # Kazakhstan, within +7
    ],
)
def test_the_shortcut_finds_the_country_the_library_finds(phone: str) -> None:
    import phonenumbers

    number = phonenumbers.parse(phone)
    library = phonenumbers.region_code_for_number(number) or (
        phonenumbers.region_code_for_country_code(number.country_code)
    )
    assert destination(phone).country == library
