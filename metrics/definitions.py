"""Every metric the sidecar writes, defined once, with the closed sets of its label values.

The metric objects are registered in no registry: the exposition decides per scrape what to
read (this process's values, or every process's files in multiprocess mode, see
:mod:`metrics.exposition`), and tests register them in a private registry of their own.
Whether values live in memory or in files under ``PROMETHEUS_MULTIPROC_DIR`` is decided by
prometheus-client when it is first imported, so the launcher sets that variable before the
process starts.

Label values never carry a phone number, a message id or an error text: channels, statuses,
outcomes and reasons are mapped to the closed sets below (``other`` for anything new).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from typing import Literal, cast, get_args

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

from metrics.error_classes import ERROR_CLASSES
from qlara import channel_bucket

# The multiprocess exposition has no ``*_created`` series; without them here too, one
# process and many expose the same series.
disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped upstream

Channel = Literal["sms", "rcs", "whatsapp", "other"]

#: Channels Qlara documents, and ``other`` for a missing or new one.
#: :data:`qlara.CHANNEL_BUCKETS`, typed as the label's values (a test keeps them equal).
CHANNELS: tuple[Channel, ...] = get_args(Channel)
#: Statuses Qlara documents, and ``other`` for a new one.
STATUSES: tuple[str, ...] = (
    "sent",
    "received",
    "delivered",
    "read",
    "error",
    "expired",
    "unknown",
    "other",
)
#: What became of a webhook request (``receiver.outcomes`` names the same values).
REQUEST_OUTCOMES: tuple[str, ...] = (
    "accepted",
    "spooled",
    "invalid",
    "unauthorized",
    "rate_limited",
    "method_not_allowed",
    "too_large",
    "unsupported_media",
    "unavailable",
)
#: Final statuses, the outcomes of a delivery.
DELIVERY_OUTCOMES: tuple[str, ...] = ("delivered", "error", "expired")
#: Statuses counted as delivery errors.
ERROR_STATUSES: frozenset[str] = frozenset({"error", "expired"})
#: Queues whose backlog is reported at scrape time.
QUEUES: tuple[str, ...] = ("work", "dead_letter")

DeadLetterReason = Literal["poison", "undecodable", "rejected", "permanent", "retries_exhausted"]
#: Why a receipt became a dead letter: it killed its worker too often (``poison``), its
#: payload is not a receipt, the ledger refused it, another declared permanent failure, or a
#: transient failure outlasted its retries.
DEAD_LETTER_REASONS: tuple[DeadLetterReason, ...] = (
    "poison",
    "undecodable",
    "rejected",
    "permanent",
    "retries_exhausted",
)

#: Request start to response sent: fine below 50 ms, where a healthy webhook answers.
ACK_BUCKETS = (
    0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05,
    0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip
#: Sent -> final, 1 s to 3 days.
LATENCY_BUCKETS = (
    1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
    7200.0, 21600.0, 43200.0, 86400.0, 172800.0, 259200.0,
)  # fmt: skip
#: Event time -> receipt: how late Qlara reports, 0.5 s to a day.
DELAY_BUCKETS = (
    0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
    21600.0, 86400.0,
)  # fmt: skip

WEBHOOK_REQUESTS = Counter(
    "qlara_webhook_requests",
    "Requests to the webhook, by how they ended.",
    ["outcome"],
    registry=None,
)
SENDS_REQUESTS = Counter(
    "qlara_sends_requests",
    "Requests to POST /v1/sends (the sends the application reports), by how they ended; "
    "the same outcomes as the webhook's.",
    ["outcome"],
    registry=None,
)
#: The fields whose implausible values the receiver keeps, and counts.
IMPLAUSIBLE_FIELDS: tuple[str, ...] = ("timestamp", "numPart", "totalParts", "price")
WEBHOOK_IMPLAUSIBLE = Counter(
    "qlara_webhook_implausible_values",
    "Implausible values kept in accepted events (a missing or far-off timestamp, timed at "
    "its receipt; a part number out of range; a price beyond any float), by field.",
    ["field"],
    registry=None,
)
WEBHOOK_ACK = Histogram(
    "qlara_webhook_ack_seconds",
    "Seconds from a webhook request's start to its response sent.",
    buckets=ACK_BUCKETS,
    registry=None,
)


@dataclass(frozen=True, slots=True)
class LedgerCounter:
    """A counter the workers keep in the ledger, in the transaction that records what it
    counts (:mod:`ledger.counting`), and a scrape reads from there: exact whatever crashed,
    where a counter of this process's would miss what a worker counted after its commit
    when it died in between. ``labels`` are its label names (two at most); a scrape shows
    every combination of ``initial`` at 0 before anything is counted."""

    name: str
    documentation: str
    labels: tuple[str, ...] = ()
    initial: tuple[tuple[str, ...], ...] = ((),)

    def key(self, *values: str) -> tuple[str, str, str]:
        """The ledger's key of one sample: (name, label values padded with ``""``)."""
        a, b = (*values, "", "")[:2]
        return (self.name, a, b)


EVENTS = LedgerCounter(
    "qlara_events",
    "Unique status events recorded (after deduplication).",
    ("channel", "status"),
    tuple(itertools.product(CHANNELS, STATUSES)),
)
DUPLICATE_EVENTS = LedgerCounter(
    "qlara_duplicate_events",
    "Status events received again after they had been recorded.",
    ("channel",),
    tuple((channel,) for channel in CHANNELS),
)
INBOUND_REPLIES = LedgerCounter(
    "qlara_inbound_replies",
    "Replies from recipients recorded, once each (a reply sent again is not counted again).",
)
DELIVERY_ERRORS = LedgerCounter(
    "qlara_delivery_errors",
    "Unique error and expired events, by error class (the text stays in the ledger).",
    ("channel", "reason"),
    tuple(itertools.product(CHANNELS, ERROR_CLASSES)),
)
RECONCILE_FILLED = LedgerCounter(
    "qlara_reconcile_filled",
    "Final statuses the webhook never delivered, filled in by polling Qlara's status API.",
    ("channel",),
    tuple((channel,) for channel in CHANNELS),
)
#: The counters kept in the ledger.
LEDGER_COUNTED: tuple[LedgerCounter, ...] = (
    EVENTS,
    DUPLICATE_EVENTS,
    INBOUND_REPLIES,
    DELIVERY_ERRORS,
    RECONCILE_FILLED,
)

RECEIPTS_REPLAYED = Counter(
    "qlara_receipts_replayed",
    "Messages a worker processed again and found already recorded, so nothing changed: "
    "redelivered after a worker died or its acknowledgement did not reach the broker.",
    registry=None,
)
DELIVERY_LATENCY = Histogram(
    "qlara_delivery_latency_seconds",
    "Seconds from a message's sent event to its final status, by event time, once per message.",
    ["channel", "outcome"],
    buckets=LATENCY_BUCKETS,
    registry=None,
)
DELIVERY_LATENCY_BY_COUNTRY = Histogram(
    "qlara_delivery_latency_by_country_seconds",
    "Seconds from a message's sent event to its final status, once per message, by the "
    "destination's country: the most frequent countries by name (COUNTRY_LABELS), the rest "
    "other, no phone known unknown. Its _count by outcome gives failures by country.",
    ["country", "outcome"],
    buckets=LATENCY_BUCKETS,
    registry=None,
)
WEBHOOK_DELAY = Histogram(
    "qlara_webhook_delay_seconds",
    "Seconds from an event's time to its receipt by the webhook (how late Qlara reports).",
    ["channel"],
    buckets=DELAY_BUCKETS,
    registry=None,
)
LAST_EVENT = Gauge(
    "qlara_webhook_last_event_timestamp_seconds",
    "Unix time at which the newest recorded event of the channel was received.",
    ["channel"],
    multiprocess_mode="max",
    registry=None,
)
DEAD_LETTERS = Counter(
    "qlara_dead_letters",
    "Receipts written to the dead-letter table, by why they could not be recorded.",
    ["reason"],
    registry=None,
)
#: What became of one poll of a message's status (the reconciler).
POLL_RESULTS: tuple[str, ...] = ("filled", "still_pending", "not_found", "error", "rate_limited")
RECONCILE_POLLS = Counter(
    "qlara_reconcile_polls",
    "Messages the reconciler asked Qlara's status API about, by result: filled (a final "
    "status the webhook never delivered, recorded), still_pending, not_found, error "
    "(no answer, a 5xx or the breaker open), rate_limited.",
    ["result"],
    registry=None,
)
#: The API calls the client makes.
API_ENDPOINTS: tuple[str, ...] = ("status", "status_batch", "webhook")
API_REQUESTS = Counter(
    "qlara_api_requests",
    "Calls to Qlara's API, by endpoint and HTTP status (error: no answer).",
    ["endpoint", "code"],
    registry=None,
)
BUILD_INFO = Gauge(
    "qlara_build_info",
    "Always 1; the version label names the running qlara-sidecar.",
    ["version"],
    multiprocess_mode="max",
    registry=None,
)

#: Every metric object above that a process counts itself (not :data:`LEDGER_COUNTED`), for
#: exposition and for tests' private registries.
ALL = (
    WEBHOOK_REQUESTS,
    SENDS_REQUESTS,
    WEBHOOK_IMPLAUSIBLE,
    WEBHOOK_ACK,
    RECEIPTS_REPLAYED,
    DELIVERY_LATENCY,
    DELIVERY_LATENCY_BY_COUNTRY,
    WEBHOOK_DELAY,
    LAST_EVENT,
    DEAD_LETTERS,
    RECONCILE_POLLS,
    API_REQUESTS,
    BUILD_INFO,
)

_KNOWN_STATUSES = frozenset(STATUSES) - {"other"}


def channel_label(channel: str | None) -> Channel:
    """The ``channel`` label of an event's channel: ``other`` when missing or undocumented
    (:func:`qlara.channel_bucket`)."""
    return cast(Channel, channel_bucket(channel))


#: The ``country`` label of a destination whose country is not one of those labelled by name.
OTHER_COUNTRY = "other"
#: The ``country`` label of a message whose phone, hence country, is not known.
UNKNOWN_COUNTRY = "unknown"
_labelled_countries: frozenset[str] = frozenset()


def label_countries(countries: Iterable[str]) -> None:
    """Name these countries (ISO codes) in the ``country`` label from now on; any other is
    ``other``. Keeps the label's values bounded: never more than these, plus two."""
    global _labelled_countries
    _labelled_countries = frozenset(c.upper() for c in countries)
    for country in _labelled_countries:
        for outcome in DELIVERY_OUTCOMES:
            DELIVERY_LATENCY_BY_COUNTRY.labels(country, outcome)


def labelled_countries() -> frozenset[str]:
    """The countries the ``country`` label names now (:func:`label_countries`)."""
    return _labelled_countries


def country_label(country: str | None) -> str:
    """The ``country`` label of a destination's country (never the number itself)."""
    if country is None:
        return UNKNOWN_COUNTRY
    return country if country in _labelled_countries else OTHER_COUNTRY


def status_label(status: str) -> str:
    """The ``status`` label of an event's status: ``other`` when undocumented."""
    lowered = status.lower()
    return lowered if lowered in _KNOWN_STATUSES else "other"


def initialise(version: str | None = None) -> None:
    """Create every labelled series at 0 (so rates exist before the first event) and set
    ``qlara_build_info{version}`` to 1 (``version`` defaults to the installed
    qlara-sidecar's). Idempotent; call once per process at start.

    ``qlara_webhook_last_event_timestamp_seconds`` is left out: a 0 would claim an event
    in 1970, so the series appears with a channel's first event.
    """
    if version is None:
        version = installed_version()
    for outcome in REQUEST_OUTCOMES:
        WEBHOOK_REQUESTS.labels(outcome)
        SENDS_REQUESTS.labels(outcome)
    for name in IMPLAUSIBLE_FIELDS:
        WEBHOOK_IMPLAUSIBLE.labels(name)
    for channel in CHANNELS:
        WEBHOOK_DELAY.labels(channel)
        for outcome in DELIVERY_OUTCOMES:
            DELIVERY_LATENCY.labels(channel, outcome)
    for country in (OTHER_COUNTRY, UNKNOWN_COUNTRY):
        for outcome in DELIVERY_OUTCOMES:
            DELIVERY_LATENCY_BY_COUNTRY.labels(country, outcome)
    for reason in DEAD_LETTER_REASONS:
        DEAD_LETTERS.labels(reason)
    for result in POLL_RESULTS:
        RECONCILE_POLLS.labels(result)
    BUILD_INFO.labels(version).set(1)


def installed_version() -> str:
    """The installed qlara-sidecar's version, ``unknown`` when it is not installed."""
    try:
        return metadata.version("qlara-sidecar")
    except metadata.PackageNotFoundError:
        return "unknown"


def label_sets() -> dict[str, list[tuple[str, ...]]]:
    """Every label combination each labelled metric is initialised with, by metric name
    (those kept in the ledger: as a scrape shows them)."""
    return {
        **{c.name: list(c.initial) for c in LEDGER_COUNTED if c.labels},
        "qlara_webhook_requests": [(o,) for o in REQUEST_OUTCOMES],
        "qlara_sends_requests": [(o,) for o in REQUEST_OUTCOMES],
        "qlara_webhook_implausible_values": [(f,) for f in IMPLAUSIBLE_FIELDS],
        "qlara_delivery_latency_seconds": list(itertools.product(CHANNELS, DELIVERY_OUTCOMES)),
        "qlara_webhook_delay_seconds": [(c,) for c in CHANNELS],
        "qlara_dead_letters": [(r,) for r in DEAD_LETTER_REASONS],
        "qlara_reconcile_polls": [(r,) for r in POLL_RESULTS],
    }
