"""Where a message goes: the destination's country and its number range's operator, read
from the numbering plan by the ``phonenumbers`` library (Google's libphonenumber data).

The operator is the one the number range was first assigned to: a number ported to another
operator still names the first. The country is an ISO 3166-1 alpha-2 code (``IT``). Neither
ever holds the number itself, so both may serve as labels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from qlara.phone import normalise_phone

if TYPE_CHECKING:
    import phonenumbers

# phonenumbers is imported where it is used: its tables take 12 MiB, which the processes
# that never look a number up (the supervisor, the receiver) need not carry.

#: What the library calls a region it does not know ("ZZ"), and the non-geographic numbers'
#: (``+800``, ``+882``...): no country either way.
_NO_COUNTRY = frozenset({"ZZ", "001"})


def _country(number: phonenumbers.PhoneNumber) -> str | None:
    """The number's region, as ``region_code_for_number`` finds it (or its code's main one).

    Only a code several countries share (+1, +39, +44...) needs the number checked against
    each country's ranges, which costs more than the rest of :func:`destination` together.
    When every other country of the code is told by its leading digits (+39's Vatican:
    06698) and none of them matches, the library's own search can only end in the main
    country, so it is skipped."""
    import phonenumbers

    code = number.country_code or 0
    regions = phonenumbers.region_codes_for_country_code(code)
    if len(regions) == 1:
        return str(regions[0])
    national = phonenumbers.national_significant_number(number)
    leading = [
        getattr(phonenumbers.PhoneMetadata.metadata_for_region(r), "leading_digits", None)
        for r in regions[1:]
    ]
    if all(leading) and not any(re.match(str(digits), national) for digits in leading):
        return str(regions[0])
    return phonenumbers.region_code_for_number(number) or (
        phonenumbers.region_code_for_country_code(code)
    )


#: Fewest digits, country code included, that can name a country: shorter values are short
#: codes or junk, with no country.
_FEWEST_DIGITS = 7


@dataclass(frozen=True, slots=True)
class Destination:
    """A number's country (``None``: not known) and its range's original operator
    (``None``: the plan names none, as for most fixed lines and many countries' mobiles)."""

    country: str | None
    operator: str | None


NOWHERE = Destination(None, None)


@lru_cache(maxsize=65_536)
def destination(phone: str | None) -> Destination:
    """The destination of ``phone``, as Qlara reports it (``+393901234567``, ``0039…``, or
    digits alone, which SMS gateways write in international form without the ``+``).

    A number the plan does not hold as valid still has the country its country code
    belongs to (``+44 7700 900…`` is ``GB``); nothing that cannot be a number has one."""
    import phonenumbers
    from phonenumbers import carrier

    if not phone:
        return NOWHERE
    digits = normalise_phone(phone).lstrip("+")
    if len(digits) < _FEWEST_DIGITS:
        return NOWHERE
    try:
        number = phonenumbers.parse("+" + digits)
    except phonenumbers.NumberParseException:
        return NOWHERE
    country = _country(number)
    if not country or country in _NO_COUNTRY:
        return NOWHERE
    # The range's operator by prefix: the plan lists operators for mobile ranges only
    operator = carrier.name_for_valid_number(number, "en") or None
    return Destination(country, operator)


#: Most countries the label may name.
MOST_LABELLED_COUNTRIES = 50
#: Countries named by code, or how many of the most frequent to name.
CountryChoice = tuple[str, ...] | int


def parse_country_labels(text: str) -> CountryChoice:
    """Which countries a metric label names: ``top:N`` (the N countries with the most
    messages over the last 7 days, N at most :data:`MOST_LABELLED_COUNTRIES`) or
    comma-separated ISO 3166-1 alpha-2 codes (``IT,FR,DE``). Raises ``ValueError`` naming
    what is wrong."""
    value = text.strip()
    if value.lower().startswith("top:"):
        count = value[4:].strip()
        if not count.isdigit() or int(count) > MOST_LABELLED_COUNTRIES:
            raise ValueError(f"top:N wants N from 0 to {MOST_LABELLED_COUNTRIES}, got {count!r}")
        return int(count)
    codes = tuple(dict.fromkeys(part.strip().upper() for part in value.split(",") if part.strip()))
    import phonenumbers  # only for a list of codes: top:N is read by every process

    unknown = [code for code in codes if code not in phonenumbers.SUPPORTED_REGIONS]
    if unknown:
        raise ValueError(
            f"not ISO 3166-1 alpha-2 codes of the numbering plan: {', '.join(unknown)} "
            "(use codes such as IT,FR,DE, or top:10)"
        )
    if len(codes) > MOST_LABELLED_COUNTRIES:
        raise ValueError(f"at most {MOST_LABELLED_COUNTRIES} countries, got {len(codes)}")
    return codes
