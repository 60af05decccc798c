"""Scrape-time families: what is waiting now, read from the ledger, the broker and the spool,
and the counters the workers keep in the ledger.

A :class:`StateCollector` is built from plain callables (the receiver passes ones that read
its ledger, its Redis and its spool), so this package needs neither. Each callable is asked
once per scrape; one that raises leaves its samples out of that scrape (the backend is down;
``qlara_scrape_source_up`` says which) and never fails the scrape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TypeVar

import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from metrics.definitions import CHANNELS, LEDGER_COUNTED, QUEUES, channel_label

log = structlog.get_logger(__name__)

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Pending:
    """Messages of one channel sent with no final status yet, within the channel's expiry
    horizon, and the oldest one's age; ``unresolved``: those sent before the horizon that
    never got one (Qlara will not send it now)."""

    messages: int
    oldest_age_seconds: float | None
    unresolved: int = 0


def registration_key(namespace: str) -> str:
    """The Redis key where the reconciler keeps its last webhook registration verdict
    (``{"ok": bool, "reason": str}``), read at scrape time."""
    return f"{namespace}:__registration__"


#: The last registration verdict: (ok, reason), or ``None`` when there is none.
RegistrationSource = Callable[[], tuple[bool, str] | None]

#: Pending messages by the channel the ledger knows them by (``None``: no channel).
PendingSource = Callable[[], Mapping[str | None, Pending]]
#: A count: messages on the broker's work queue, dead letters waiting, events spooled.
CountSource = Callable[[], int]
#: The ledger-kept counters' samples: (metric, label, label) -> value
#: (``ledger.Ledger.recorded_counts``).
RecordedSource = Callable[[], Mapping[tuple[str, str, str], int]]


class StateCollector(Collector):
    """Yields ``qlara_webhook_registration_ok{reason}`` (when the reconciler has checked),
    ``qlara_messages_pending``, ``qlara_messages_pending_oldest_age_seconds``,
    ``qlara_messages_unresolved``,
    ``qlara_queue_messages{queue="work"|"dead_letter"}``, ``qlara_spool_events``,
    the counters kept in the ledger (:data:`~metrics.definitions.LEDGER_COUNTED`, from
    ``recorded``) and ``qlara_scrape_source_up{source}``.

    A source given as ``None`` is not reported at all; one that raises is reported with
    ``qlara_scrape_source_up{source} 0`` and no samples. ``work_queue`` counts what the
    broker holds (waiting, delayed for a retry, in flight); ``dead_letters`` the dead letters
    not redriven.
    """

    def __init__(
        self,
        *,
        pending: PendingSource | None = None,
        work_queue: CountSource | None = None,
        dead_letters: CountSource | None = None,
        spool: CountSource | None = None,
        registration: RegistrationSource | None = None,
        recorded: RecordedSource | None = None,
    ) -> None:
        self._registration = registration
        self._recorded = recorded
        self._pending = pending
        self._queues = {"work": work_queue, "dead_letter": dead_letters}
        self._spool = spool

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "qlara_scrape_source_up",
            "1 when the backend behind a scrape-time gauge answered this scrape, else 0.",
            labels=["source"],
        )
        if self._pending is not None:
            pending = _ask("pending", self._pending, up)
            if pending is not None:
                yield from _pending_families(pending)
        queues = GaugeMetricFamily(
            "qlara_queue_messages",
            "Messages waiting: work is the broker's queue (delayed retries and messages in "
            "flight included), dead_letter the dead letters not yet redriven.",
            labels=["queue"],
        )
        for queue in QUEUES:
            source = self._queues[queue]
            if source is not None:
                size = _ask(f"{queue}_queue", source, up)
                if size is not None:
                    queues.add_metric([queue], size)
        if queues.samples:
            yield queues
        if self._spool is not None:
            spooled = _ask("spool", self._spool, up)
            if spooled is not None:
                family = GaugeMetricFamily(
                    "qlara_spool_events",
                    "Events waiting in this host's local spool for Redis to take them.",
                )
                family.add_metric([], spooled)
                yield family
        if self._registration is not None:
            verdict = _ask("registration", self._registration, up)
            if verdict is not None:
                ok, reason = verdict
                family = GaugeMetricFamily(
                    "qlara_webhook_registration_ok",
                    "1 when the webhook URL Qlara has on file is the sidecar's, else 0, with "
                    "the reason: none (nothing registered), replaced (another URL), unknown "
                    "(Qlara could not be asked, or WEBHOOK_PUBLIC_URL is not set).",
                    labels=["reason"],
                )
                family.add_metric([reason], 1 if ok else 0)
                yield family
        if self._recorded is not None:
            counted = _ask("counts", self._recorded, up)
            if counted is not None:
                yield from _counted_families(counted)
        yield up


def _ask(source: str, read: Callable[[], _T], up: GaugeMetricFamily) -> _T | None:
    try:
        value = read()
    except Exception as exc:  # a backend being down must not fail the scrape
        log.warning("metrics source unavailable", source=source, error=type(exc).__name__)
        up.add_metric([source], 0)
        return None
    up.add_metric([source], 1)
    return value


def _pending_families(pending: Mapping[str | None, Pending]) -> Iterator[Metric]:
    counts: dict[str, int] = dict.fromkeys(CHANNELS, 0)
    lost: dict[str, int] = dict.fromkeys(CHANNELS, 0)
    oldest: dict[str, float] = {}
    for channel, group in pending.items():
        label = channel_label(channel)
        counts[label] += group.messages
        lost[label] += group.unresolved
        if group.oldest_age_seconds is not None:
            oldest[label] = max(oldest.get(label, 0.0), group.oldest_age_seconds)
    messages = GaugeMetricFamily(
        "qlara_messages_pending",
        "Messages sent within the channel's expiry horizon with no final status yet.",
        labels=["channel"],
    )
    unresolved = GaugeMetricFamily(
        "qlara_messages_unresolved",
        "Messages sent before the channel's expiry horizon that never got a final status.",
        labels=["channel"],
    )
    ages = GaugeMetricFamily(
        "qlara_messages_pending_oldest_age_seconds",
        "Age of the oldest message sent with no final status yet (0 when none is pending).",
        labels=["channel"],
    )
    for channel in CHANNELS:
        messages.add_metric([channel], counts[channel])
        ages.add_metric([channel], oldest.get(channel, 0.0))
        unresolved.add_metric([channel], lost[channel])
    yield messages
    yield ages
    yield unresolved


def _counted_families(counted: Mapping[tuple[str, str, str], int]) -> Iterator[Metric]:
    for counter in LEDGER_COUNTED:
        values = dict.fromkeys(counter.initial, 0)
        width = len(counter.labels)
        for (metric, a, b), n in counted.items():
            if metric == counter.name:
                key = (a, b)[:width]
                values[key] = values.get(key, 0) + n
        family = CounterMetricFamily(
            counter.name, counter.documentation, labels=list(counter.labels)
        )
        for labels, value in values.items():
            family.add_metric(list(labels), value)
        yield family
