"""Error text -> one of a few error classes, for the ``reason`` label of
``qlara_delivery_errors_total``.

Qlara reports failures as free text (and carriers word them differently). A label must come
from a closed set, so the text is mapped to at most sixteen classes; the raw text stays in the
ledger, where the read API shows it. The first rule whose words appear in the text decides,
so the more specific rules come first ("Blocked by carrier" is ``blocked``, not ``carrier``).

This module is the one table: the metrics, the explorer's failures page and its filter all
read it. :data:`DOCUMENTED_TEXTS` are the failure texts Qlara's documentation shows; the
tests feed it those and every text the simulator produces.
"""

from __future__ import annotations

import re
from typing import Literal, get_args

ErrorClass = Literal[
    "not_on_channel",
    "outside_window",
    "template",
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
    "not_delivered",
    "unspecified",
    "other",
]

#: Every class, in the order the rules are tried (``unspecified`` and ``other`` last).
ERROR_CLASSES: tuple[ErrorClass, ...] = get_args(ErrorClass)

#: Failure texts Qlara's documentation shows: the guide's EXPIRED meaning, and the platform
#: and SMS Universal shapes' code 6.
DOCUMENTED_TEXTS: tuple[str, ...] = (
    "Message was not delivered within retention period",
    "Not delivered",
    "Delivery failed",
)

_RULES: tuple[tuple[ErrorClass, re.Pattern[str]], ...] = (
    # WhatsApp and RCS: the recipient has no account on the channel, or no capable device
    (
        "not_on_channel",
        re.compile(
            r"not an? (whatsapp|rcs) user|not (registered|enabled|active) (on|for) (whatsapp|rcs)"
            r"|no (whatsapp|rcs) account|(whatsapp|rcs) not (supported|enabled|available)"
            r"|not (whatsapp|rcs).capable"
        ),
    ),
    # WhatsApp: free-form messages only within 24 hours of the customer's last message
    (
        "outside_window",
        re.compile(r"24.?hour|customer (service|care) window|(session|conversation) window"),
    ),
    # WhatsApp and RCS templates: paused, rejected, not approved, disabled
    ("template", re.compile(r"template")),
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
    ("expired", re.compile(r"expired|validity|ttl|retention period")),
    # The generic failure (code 6): nothing more specific was said
    (
        "not_delivered",
        re.compile(r"not delivered|undeliverable|undelivered|delivery failed|failed to deliver"),
    ),
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
