"""Error text -> one of a few error classes, for the ``reason`` label of
``qlara_delivery_errors_total``.

Qlara reports failures as free text (and carriers word them differently). A label must come
from a closed set, so the text is mapped to at most twelve classes; the raw text stays in the
ledger, where the read API shows it. The first rule whose words appear in the text decides,
so the more specific rules come first ("Blocked by carrier" is ``blocked``, not ``carrier``).
"""

from __future__ import annotations

import re
from typing import Literal, get_args

ErrorClass = Literal[
    "invalid_number",
    "blocked",
    "unreachable",
    "absent",
    "handset",
    "rejected",
    "spam",
    "billing",
    "carrier",
    "expired",
    "unspecified",
    "other",
]

#: Every class, in the order the rules are tried (``unspecified`` and ``other`` last).
ERROR_CLASSES: tuple[ErrorClass, ...] = get_args(ErrorClass)

_RULES: tuple[tuple[ErrorClass, re.Pattern[str]], ...] = (
    (
        "invalid_number",
        re.compile(
            r"invalid (destination|number|recipient|msisdn|phone)|(number|destination|msisdn)"
            r" (is )?(invalid|not valid|unknown|not allocated|unallocated|does not exist)"
            r"|unknown (subscriber|number|destination)|wrong number|bad number"
        ),
    ),
    ("blocked", re.compile(r"block|blacklist|black list|opt(ed)?.?out|unsubscrib|barred|denylist")),
    (
        "unreachable",
        re.compile(
            r"unreachable|not reachable|no coverage|out of coverage|switched off|powered off"
            r"|power off|not available"
        ),
    ),
    ("absent", re.compile(r"absent")),
    ("handset", re.compile(r"handset|memory|device|phone full|inbox full|not supported by")),
    ("rejected", re.compile(r"reject|refused|denied|not allowed|policy")),
    ("spam", re.compile(r"spam|content filter|filtered")),
    ("billing", re.compile(r"credit|balance|insufficient|billing|payment|quota")),
    ("carrier", re.compile(r"carrier|operator|network|routing|route|smsc|gateway|system failure")),
    ("expired", re.compile(r"expired|validity|ttl")),
)


def classify_error(text: str | None) -> ErrorClass:
    """The class of a failure's error text: ``unspecified`` when there is none, ``other``
    when no rule matches. Case and surrounding spaces are ignored; never raises."""
    if text is None or not text.strip():
        return "unspecified"
    lowered = text.lower()
    for name, pattern in _RULES:
        if pattern.search(lowered):
            return name
    return "other"


def delivery_error_class(status: str, text: str | None) -> ErrorClass:
    """The class of a failed delivery: ``expired`` for an expired status whatever its text,
    otherwise the class of its error text."""
    if status == "expired":
        return "expired"
    return classify_error(text)
