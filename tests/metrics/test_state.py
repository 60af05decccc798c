"""Scrape-time gauges from plain callables: what they show, and that a backend that is down
leaves its samples out without failing the scrape."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from metrics import Pending, StateCollector


def scraped(collector: StateCollector) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(collector)
    return registry


def test_pending_messages_are_shown_per_channel_with_unknown_channels_as_other() -> None:
    collector = StateCollector(
        pending=lambda: {
            "sms": Pending(3, 120.0),
            None: Pending(1, 10.0),
            "telegram": Pending(2, 50.0),
        }
    )

    registry = scraped(collector)

    value = registry.get_sample_value
    assert value("qlara_messages_pending", {"channel": "sms"}) == 3
    assert value("qlara_messages_pending", {"channel": "other"}) == 3
    assert value("qlara_messages_pending", {"channel": "rcs"}) == 0
    assert value("qlara_messages_pending_oldest_age_seconds", {"channel": "sms"}) == 120
    assert value("qlara_messages_pending_oldest_age_seconds", {"channel": "other"}) == 50
    assert value("qlara_messages_pending_oldest_age_seconds", {"channel": "whatsapp"}) == 0
    assert value("qlara_scrape_source_up", {"source": "pending"}) == 1


def test_messages_past_their_horizon_are_unresolved_not_pending() -> None:
    collector = StateCollector(
        pending=lambda: {
            "whatsapp": Pending(2, 60.0, unresolved=5),
            "telegram": Pending(0, None, unresolved=1),
            None: Pending(0, None, unresolved=2),
        }
    )

    value = scraped(collector).get_sample_value
    assert value("qlara_messages_pending", {"channel": "whatsapp"}) == 2
    assert value("qlara_messages_unresolved", {"channel": "whatsapp"}) == 5
    assert value("qlara_messages_pending", {"channel": "other"}) == 0
    assert value("qlara_messages_unresolved", {"channel": "other"}) == 3
    assert value("qlara_messages_pending_oldest_age_seconds", {"channel": "other"}) == 0
    assert value("qlara_messages_unresolved", {"channel": "sms"}) == 0


def test_queues_and_spool_are_shown_as_counted() -> None:
    collector = StateCollector(work_queue=lambda: 7, dead_letters=lambda: 2, spool=lambda: 5)

    registry = scraped(collector)

    value = registry.get_sample_value
    assert value("qlara_queue_messages", {"queue": "work"}) == 7
    assert value("qlara_queue_messages", {"queue": "dead_letter"}) == 2
    assert value("qlara_spool_events", {}) == 5


def test_a_source_that_raises_leaves_its_samples_out_and_says_so() -> None:
    def down() -> int:
        raise ConnectionError("refused")

    def ledger_down() -> dict[str | None, Pending]:
        raise TimeoutError

    collector = StateCollector(
        pending=ledger_down, work_queue=down, dead_letters=lambda: 4, spool=lambda: 0
    )

    registry = scraped(collector)

    value = registry.get_sample_value
    assert value("qlara_messages_pending", {"channel": "sms"}) is None
    assert value("qlara_queue_messages", {"queue": "work"}) is None
    assert value("qlara_queue_messages", {"queue": "dead_letter"}) == 4
    assert value("qlara_scrape_source_up", {"source": "pending"}) == 0
    assert value("qlara_scrape_source_up", {"source": "work_queue"}) == 0
    assert value("qlara_scrape_source_up", {"source": "dead_letter_queue"}) == 1


def test_each_source_is_asked_once_per_scrape() -> None:
    calls: list[str] = []

    def spool() -> int:
        calls.append("spool")
        return 0

    registry = scraped(StateCollector(spool=spool))
    calls.clear()  # registering describes the collector once

    registry.get_sample_value("qlara_spool_events", {})

    assert calls == ["spool"]
