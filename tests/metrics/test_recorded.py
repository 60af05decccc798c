"""What the workers count as they record, from real ledger results: the counters kept in
the ledger's transaction (:func:`metrics.tally_recorded`) and this process's timings
(:func:`metrics.count_recorded`)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import msgspec
import pytest

import metrics
from ledger import Ledger, Tally
from metrics import StateCollector, count_recorded, tally_recorded
from qlara import Receipt, Shape, Source
from tests.ledger.samples import T0, event, receipt, reply
from tests.metrics.conftest import Samples
from workers.connection import LedgerConnection

TALLY = Tally("test-owner", 1, tally_recorded)


@pytest.fixture
def ledger(sqlite_url: str) -> Iterator[Ledger]:
    opened = Ledger.connect(sqlite_url)
    yield opened
    opened.close()


@pytest.fixture
def samples(ledger: Ledger) -> Samples:
    """This process's metrics and the ledger-kept counters, as a scrape reads them."""
    return Samples(StateCollector(recorded=lambda: ledger.recorded_counts(TALLY.owner)))


def record(ledger: Ledger, given: Receipt) -> None:
    """Record as a worker does: the counts in the transaction, the timings after it."""
    [result] = ledger.record_many([given], tally=TALLY)
    count_recorded(given, result)


def test_new_events_are_counted_by_channel_and_status(ledger: Ledger, samples: Samples) -> None:
    record(ledger, receipt(event("m-1", "sent", 0), event("m-1", "delivered", 5)))
    record(ledger, receipt(event("m-2", "read", 0, channel="WhatsApp")))

    assert samples.delta("qlara_events_total", channel="sms", status="sent") == 1
    assert samples.delta("qlara_events_total", channel="sms", status="delivered") == 1
    assert samples.delta("qlara_events_total", channel="whatsapp", status="read") == 1
    assert samples.total_delta("qlara_events_total") == 3


def test_a_missing_or_new_channel_and_a_new_status_are_counted_as_other(
    ledger: Ledger, samples: Samples
) -> None:
    record(ledger, receipt(event("m-1", "sent", 0, channel=None)))
    record(ledger, receipt(event("m-2", "sent", 0, channel="telegram")))
    record(ledger, receipt(event("m-3", "queued_at_carrier", 0)))

    assert samples.delta("qlara_events_total", channel="other", status="sent") == 2
    assert samples.delta("qlara_events_total", channel="sms", status="other") == 1


def test_a_resent_event_counts_as_a_duplicate_and_not_as_an_event(
    ledger: Ledger, samples: Samples
) -> None:
    record(ledger, receipt(event("m-1", "sent", 0)))
    record(ledger, receipt(event("m-1", "sent", 0)))
    record(ledger, receipt(event("m-1", "sent", 0), event("m-1", "sent", 0)))

    assert samples.total_delta("qlara_events_total") == 1
    assert samples.delta("qlara_duplicate_events_total", channel="sms") == 3


def test_a_receipt_recorded_twice_counts_once(ledger: Ledger, samples: Samples) -> None:
    # Given a receipt the broker delivers twice (the ledger records its id once)
    given = receipt(event("m-1", "sent", 0), event("m-1", "error", 9, error="Blocked"))

    record(ledger, given)
    record(ledger, given)

    assert samples.total_delta("qlara_events_total") == 2
    assert samples.total_delta("qlara_duplicate_events_total") == 0
    # And the second delivery is counted as what it was: a replay that changed nothing
    assert samples.total_delta("qlara_receipts_replayed_total") == 1
    assert samples.total_delta("qlara_delivery_errors_total") == 1
    assert (
        samples.delta("qlara_delivery_latency_seconds_count", channel="sms", outcome="error") == 1
    )


def test_errors_and_expiries_are_counted_by_class_never_by_text(
    ledger: Ledger, samples: Samples
) -> None:
    record(ledger, receipt(event("m-1", "error", 0, error="Invalid destination number")))
    record(ledger, receipt(event("m-2", "error", 0, error="Invalid destination number")))
    record(ledger, receipt(event("m-3", "expired", 0, error="Validity period expired")))
    record(ledger, receipt(event("m-4", "error", 0, channel="rcs")))

    assert samples.delta("qlara_delivery_errors_total", channel="sms", reason="invalid_number") == 2
    assert samples.delta("qlara_delivery_errors_total", channel="sms", reason="expired") == 1
    assert samples.delta("qlara_delivery_errors_total", channel="rcs", reason="unspecified") == 1
    exposed = {
        sample.labels.get("reason")
        for family in samples.registry.collect()
        for sample in family.samples
        if family.name == "qlara_delivery_errors"
    }
    assert "Invalid destination number" not in exposed


def test_the_latency_is_observed_once_per_message_from_event_times(
    ledger: Ledger, samples: Samples
) -> None:
    # Given a message whose final status arrives before its sent event
    record(ledger, receipt(event("m-1", "delivered", 42)))
    record(ledger, receipt(event("m-1", "sent", 0)))
    # And a read receipt afterwards, which changes no latency
    record(ledger, receipt(event("m-1", "read", 100)))

    labels = {"channel": "sms", "outcome": "delivered"}
    assert samples.delta("qlara_delivery_latency_seconds_count", **labels) == 1
    assert samples.delta("qlara_delivery_latency_seconds_sum", **labels) == 42
    assert samples.delta("qlara_delivery_latency_seconds_bucket", le="60.0", **labels) == 1
    assert samples.delta("qlara_delivery_latency_seconds_bucket", le="30.0", **labels) == 0


def test_the_webhook_delay_is_receipt_time_minus_event_time(
    ledger: Ledger, samples: Samples
) -> None:
    record(ledger, receipt(event("m-1", "sent", 0), received_at=T0 + timedelta(seconds=3)))
    # A clock ahead of ours gives no negative delay
    record(ledger, receipt(event("m-2", "sent", 60), received_at=T0))

    assert samples.delta("qlara_webhook_delay_seconds_count", channel="sms") == 2
    assert samples.delta("qlara_webhook_delay_seconds_sum", channel="sms") == 3


def test_the_last_event_timestamp_only_moves_forward(ledger: Ledger, samples: Samples) -> None:
    later = T0 + timedelta(days=36500)  # later than anything another test recorded
    record(ledger, receipt(event("m-1", "sent", 0, channel="rcs"), received_at=later))
    record(ledger, receipt(event("m-2", "sent", 0, channel="rcs"), received_at=T0))

    assert (
        samples.value("qlara_webhook_last_event_timestamp_seconds", channel="rcs")
        == later.timestamp()
    )


def test_sends_from_the_application_count_only_through_the_latency_they_make_known(
    ledger: Ledger, samples: Samples
) -> None:
    # Given sends the application reported, twice, and Qlara's delivery of one of them
    sent = msgspec.structs.replace(
        event("m-1", "sent", 0), source=Source.APP, shape=Shape.APP, channel="rcs"
    )
    record(ledger, receipt(sent, sent))
    record(ledger, receipt(event("m-1", "delivered", 7, channel="rcs")))

    # Then Qlara's event is counted, the sends are not, and the latency is measured once
    assert samples.total_delta("qlara_events_total") == 1
    assert samples.delta("qlara_events_total", channel="rcs", status="delivered") == 1
    assert samples.total_delta("qlara_duplicate_events_total") == 0
    assert samples.delta("qlara_webhook_delay_seconds_count", channel="rcs") == 1
    assert (
        samples.delta("qlara_delivery_latency_seconds_sum", channel="rcs", outcome="delivered") == 7
    )


def test_a_worker_opening_the_ledger_knows_the_last_event_time_from_it(
    ledger: Ledger, sqlite_url: str, samples: Samples
) -> None:
    # Given Qlara's last whatsapp event in the ledger (later than any other test's), and a
    # send the application reported after it, both recorded without counting (a restart)
    last = T0 + timedelta(days=36600)
    ledger.record(receipt(event("m-1", "sent", 0, channel="whatsapp"), received_at=last))
    sent = msgspec.structs.replace(
        event("m-2", "sent", 0, channel="whatsapp"), source=Source.APP, shape=Shape.APP
    )
    ledger.record(receipt(sent, received_at=last + timedelta(hours=1)))

    # When a worker process opens the ledger
    connection = LedgerConnection(sqlite_url)
    try:
        connection.open()
    finally:
        connection.close()

    # Then the gauge shows Qlara's last event, before any new one arrives
    assert (
        samples.value("qlara_webhook_last_event_timestamp_seconds", channel="whatsapp")
        == last.timestamp()
    )


def test_latency_and_outcome_by_country_name_only_the_labelled_countries(
    ledger: Ledger, samples: Samples
) -> None:
    metrics.label_countries(["IT"])
    try:
        for message_id, phone, status in [
            ("m-it", "+393471234567", "delivered"),
            ("m-it-2", "+393471234568", "error"),
            ("m-fr", "+33600000001", "error"),  # not labelled: other
            ("m-none", None, "delivered"),  # no phone: unknown
        ]:
            record(ledger, receipt(event(message_id, "sent", 0, phone=phone)))
            record(ledger, receipt(event(message_id, status, 9, phone=phone)))
    finally:
        metrics.label_countries([])

    name = "qlara_delivery_latency_by_country_seconds_count"
    assert samples.delta(name, country="IT", outcome="delivered") == 1
    assert samples.delta(name, country="IT", outcome="error") == 1
    assert samples.delta(name, country="other", outcome="error") == 1
    assert samples.delta(name, country="unknown", outcome="delivered") == 1
    assert samples.total_delta(name) == 4
    # the label holds only countries and the two catch-alls, never a number
    assert samples.moved_label_values(name, "country") == {"IT", "other", "unknown"}


def test_inbound_replies_are_counted_once_each(ledger: Ledger, samples: Samples) -> None:
    record(ledger, receipt(inbound=(reply("in-1"), reply("in-2"))))
    record(ledger, receipt(inbound=(reply("in-1"),)))  # sent again: already recorded

    assert samples.delta("qlara_inbound_replies_total") == 2
