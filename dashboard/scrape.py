"""What only the sidecar's ``GET /metrics`` knows: how the webhook answered, how fast, and
what waits in the spool and the queue.

The explorer reads one scrape and keeps the figures it shows; the names and labels are the
contract of :mod:`metrics.definitions`. Counters count since the scraped processes started.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

#: Request outcomes that are not a rejection.
ACCEPTED = frozenset({"accepted", "spooled"})


@dataclass(frozen=True, slots=True)
class Intake:
    """One scrape's figures: ``requests`` by outcome, the acknowledgement time's p50 and
    p99 estimated from the histogram (seconds; ``None`` before the first request), events
    waiting in the spool, messages per queue (``work``, ``dead_letter``)."""

    requests: dict[str, float] = field(default_factory=dict)
    ack_p50: float | None = None
    ack_p99: float | None = None
    spool_events: float | None = None
    queues: dict[str, float] = field(default_factory=dict)

    @property
    def rejected(self) -> dict[str, float]:
        """Requests refused, by reason (the outcome label), the zero ones left out."""
        return {k: v for k, v in self.requests.items() if k not in ACCEPTED and v > 0}


def histogram_quantile(share: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """Prometheus's ``histogram_quantile`` over cumulative ``(le, count)`` buckets: linear
    within the bucket holding the rank; the highest finite bound when it falls in ``+Inf``;
    ``None`` when nothing was observed."""
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = share * ordered[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return lower_bound


def read_intake(text: str) -> Intake:
    """The figures of one exposition (Prometheus text format). Raises ``ValueError`` when
    the text is not one."""
    requests: dict[str, float] = {}
    ack: dict[float, float] = {}
    spool: float | None = None
    queues: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "qlara_webhook_requests_total":
                outcome = sample.labels.get("outcome", "")
                requests[outcome] = requests.get(outcome, 0.0) + sample.value
            elif sample.name == "qlara_webhook_ack_seconds_bucket":
                bound = float(sample.labels["le"])
                ack[bound] = ack.get(bound, 0.0) + sample.value
            elif sample.name == "qlara_spool_events":
                spool = sample.value
            elif sample.name == "qlara_queue_messages":
                queues[sample.labels.get("queue", "")] = sample.value
    buckets = sorted(ack.items())
    return Intake(
        requests=requests,
        ack_p50=histogram_quantile(0.50, buckets),
        ack_p99=histogram_quantile(0.99, buckets),
        spool_events=spool,
        queues=queues,
    )


def scrape(url: str, token: str | None, timeout: float = 2.0, *, verify: bool = True) -> Intake:
    """Scrape ``url`` (with ``Authorization: Bearer token`` when given) and read it;
    ``verify``: check an HTTPS certificate.

    Raises ``httpx.HTTPError`` when it does not answer 200, ``ValueError`` when the answer
    is not an exposition.
    """
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(url, headers=headers, timeout=timeout, verify=verify)
    response.raise_for_status()
    return read_intake(response.text)
