"""Counting what the workers recorded: events, duplicates, delivery errors, latencies, delay.

Two halves, both from what the ledger made of each receipt (it reports each new event, each
duplicate and each latency exactly once; a receipt recorded again is ``already_recorded``):

- :func:`tally_recorded` runs inside the recording transaction and says what the receipt
  adds to the counters kept in the ledger (:data:`metrics.definitions.LEDGER_COUNTED`), so
  they stay exact even when a worker dies right after its commit;
- :func:`count_recorded` runs after the commit and counts the rest in this process: the
  histograms of delay and latency, the newest event's time, replays. A worker that dies
  between the commit and this loses those observations (timings, not counts of events).

The ledger's result type is described here structurally (:class:`RecordedReceipt`): metrics
and the ledger are siblings and do not import each other.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Protocol

from metrics.definitions import (
    DELIVERY_ERRORS,
    DELIVERY_LATENCY,
    DELIVERY_LATENCY_BY_COUNTRY,
    DELIVERY_OUTCOMES,
    DUPLICATE_EVENTS,
    ERROR_STATUSES,
    EVENTS,
    INBOUND_REPLIES,
    LAST_EVENT,
    RECEIPTS_REPLAYED,
    RECONCILE_FILLED,
    WEBHOOK_DELAY,
    channel_label,
    country_label,
    status_label,
)
from metrics.error_classes import delivery_error_class
from qlara import DeliveryEvent, Receipt, Source


class Latency(Protocol):
    """A message's sent -> final latency, reported once (``ledger.LatencyObservation``)."""

    @property
    def channel(self) -> str | None: ...
    @property
    def outcome(self) -> str: ...
    @property
    def seconds(self) -> float: ...
    @property
    def country(self) -> str | None: ...


class RecordedReceipt(Protocol):
    """What recording one receipt changed (``ledger.RecordResult``)."""

    @property
    def already_recorded(self) -> bool: ...
    @property
    def new_events(self) -> Sequence[DeliveryEvent]: ...
    @property
    def duplicate_events(self) -> Sequence[DeliveryEvent]: ...
    @property
    def latencies(self) -> Sequence[Latency]: ...
    @property
    def new_inbound(self) -> int: ...


_newest_lock = threading.Lock()
_newest: dict[str, float] = {}


def tally_recorded(
    receipt: Receipt, result: RecordedReceipt, counted: Counter[tuple[str, str, str]]
) -> None:
    """Add what one recorded receipt counts in the ledger-kept counters to ``counted`` (keys
    :meth:`~metrics.definitions.LedgerCounter.key`); a receipt recorded before adds nothing.

    - ``qlara_events_total{channel,status}`` and, for error and expired events,
      ``qlara_delivery_errors_total{channel,reason}``: once per new event;
    - ``qlara_duplicate_events_total{channel}``: once per duplicate event;
    - ``qlara_reconcile_filled_total{channel}``: once per new event the reconciler polled;
    - ``qlara_inbound_replies_total``: once per reply recorded for the first time.

    Sends the application reported (``source`` app) count in none of them: the event
    counters describe what Qlara reported.
    """
    if result.already_recorded:
        return
    for event in result.new_events:
        if event.source is Source.APP:
            continue
        channel = channel_label(event.channel)
        status = status_label(event.status)
        counted[EVENTS.key(channel, status)] += 1
        if status in ERROR_STATUSES:
            counted[DELIVERY_ERRORS.key(channel, delivery_error_class(status, event.error))] += 1
        if event.source is Source.POLL:
            counted[RECONCILE_FILLED.key(channel)] += 1
    for event in result.duplicate_events:
        if event.source is not Source.APP:
            counted[DUPLICATE_EVENTS.key(channel_label(event.channel))] += 1
    if result.new_inbound:
        counted[INBOUND_REPLIES.key()] += result.new_inbound


def count_recorded(receipt: Receipt, result: RecordedReceipt) -> None:
    """Count, in this process, what one recorded receipt adds to the timings; a receipt
    recorded before counts only in ``qlara_receipts_replayed_total``.

    - ``qlara_webhook_delay_seconds{channel}``: receipt time minus event time (0 when the
      event claims to come from the future), once per new event;
    - ``qlara_delivery_latency_seconds{channel,outcome}`` and
      ``qlara_delivery_latency_by_country_seconds{country,outcome}``: once per latency the
      ledger reported;
    - ``qlara_webhook_last_event_timestamp_seconds{channel}``: the receipt time, when it is
      later than what this process has seen for the channel.

    Sends the application reported (``source`` app) count only through the latencies they
    make measurable: the delay and the last event's time describe what Qlara reported, and
    an application's sends must not hide Qlara's silence. A status the reconciler polled
    (``source`` poll) never counts in the webhook's delay or last event. The counts of
    events are :func:`tally_recorded`'s.
    """
    if result.already_recorded:
        RECEIPTS_REPLAYED.inc()
        return
    received_at = receipt.received_at
    channels: set[str] = set()
    for event in result.new_events:
        if event.source is not Source.WEBHOOK:
            continue
        channel = channel_label(event.channel)
        channels.add(channel)
        WEBHOOK_DELAY.labels(channel).observe(max(received_at - event.event_time.timestamp(), 0.0))
    for latency in result.latencies:
        if latency.outcome in DELIVERY_OUTCOMES:
            seconds = max(latency.seconds, 0.0)
            DELIVERY_LATENCY.labels(channel_label(latency.channel), latency.outcome).observe(
                seconds
            )
            DELIVERY_LATENCY_BY_COUNTRY.labels(
                country_label(latency.country), latency.outcome
            ).observe(seconds)
    if channels:
        _mark_newest(channels, received_at)


def seed_last_events(last: Mapping[str, float]) -> None:
    """Set ``qlara_webhook_last_event_timestamp_seconds`` from what the ledger holds (unix
    seconds by channel name, ``other`` for none), so the series exists from a worker's start,
    through an outage that follows a restart; an event recorded later only raises it."""
    for name, received_at in last.items():
        _mark_newest({channel_label(None if name == "other" else name)}, received_at)


def _mark_newest(channels: set[str], received_at: float) -> None:
    # Receipts are recorded by several threads, not in receipt order: keep the maximum.
    with _newest_lock:
        for channel in channels:
            if received_at > _newest.get(channel, 0.0):
                _newest[channel] = received_at
                LAST_EVENT.labels(channel).set(received_at)
