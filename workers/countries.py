"""Which destination countries the ``country`` metric label names (the rest are ``other``),
kept bounded: a fixed list, or the most frequent countries in the ledger, re-read hourly."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import structlog
from dramatiq import Broker

import metrics
from qlara import CountryChoice
from workers.connection import LedgerConnection
from workers.dead_letters import failure_reason
from workers.retention import PeriodicThread

log = structlog.get_logger(__name__)

#: How often the most frequent countries are read again; how soon after a failed read, or
#: while fewer countries than asked for are known.
REFRESH_S = 3600.0
RETRY_S = 60.0
#: The span they are counted over.
COUNTED_OVER = timedelta(days=7)


class CountryLabels(PeriodicThread):
    """Names the countries of :func:`qlara.parse_country_labels`'s answer in the metrics: a fixed
    list once at boot; the most frequent at boot and every :data:`REFRESH_S` (every
    :data:`RETRY_S` while the ledger knows fewer countries than asked for). Every worker
    process reads the same ledger, so they name the same countries but for the moments
    around a refresh; the counts sum across processes whatever each names."""

    def __init__(self, connection: LedgerConnection, labels: CountryChoice) -> None:
        super().__init__("qlara-country-labels", self._run)
        self._connection = connection
        self._labels = labels

    def refresh(self) -> frozenset[str]:
        """Name the countries now; returns them. Raises what the ledger raises."""
        if isinstance(self._labels, tuple):
            metrics.label_countries(self._labels)
        else:
            since = datetime.now(UTC) - COUNTED_OVER
            metrics.label_countries(self._connection.ledger.top_countries(since, self._labels))
        return metrics.labelled_countries()

    def _run(self, broker: Broker) -> None:
        wait = 0.0
        while not self._stop.wait(wait):
            began = time.monotonic()
            try:
                named = self.refresh()
            except Exception as exc:  # the labels stay as they were; recording goes on
                log.warning("country labels not refreshed", error=failure_reason(exc))
                wait = RETRY_S
                continue
            log.debug("country labels", countries=sorted(named))
            if isinstance(self._labels, tuple):
                return
            # A new ledger names no country yet: look again soon until there are enough
            period = REFRESH_S if len(named) >= self._labels else RETRY_S
            wait = max(period - (time.monotonic() - began), 1.0)
