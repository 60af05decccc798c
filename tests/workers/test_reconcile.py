"""The reconciler against a real ledger (both backends) and the fake Qlara over HTTP: what is
due is polled, what Qlara says is final is recorded as a poll, what is not is polled again
later, and nothing past its horizon or beyond its polls is asked."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from ledger import Horizon, Ledger, RecordResult
from qlara import Receipt
from qlara_api import Limits, QlaraClient, RateLimiter
from tests.fake_qlara import API_KEY, Served
from tests.ledger.samples import T0, event, receipt
from workers.connection import LedgerConnection
from workers.reconcile import ReconcileConfig, Reconciler

NOW = T0 + timedelta(minutes=20)
AFTER = Horizon(by_channel={"sms": timedelta(minutes=10)}, default=timedelta(minutes=30))
HORIZON = Horizon(by_channel={"sms": timedelta(hours=48)}, default=timedelta(hours=24))


@pytest.fixture
def ledger(database_url: str) -> Iterator[Ledger]:
    opened = Ledger.connect(database_url)
    opened.purge(T0 + timedelta(days=36500))
    yield opened
    opened.close()


class Harness:
    def __init__(self, ledger: Ledger, database_url: str, served: Served, **config: Any) -> None:
        self.ledger = ledger
        self.served = served
        self.recorded: list[tuple[Receipt, RecordResult]] = []
        self.config = ReconcileConfig(
            api_key=API_KEY,
            api_url=served.api,
            after=AFTER,
            horizon=HORIZON,
            **config,
        )
        self.connection = LedgerConnection(database_url)
        limits = self.config.limits
        self.reconciler = Reconciler(
            self.connection,
            self.config,
            lambda: QlaraClient(API_KEY, base_url=served.api, limiter=RateLimiter(limits)),
            recorded=lambda r, result: self.recorded.append((r, result)),
        )

    def round(self, now: Any = NOW) -> dict[str, int]:
        return self.reconciler.reconcile_once(now).results

    def close(self) -> None:
        self.connection.close()


@pytest.fixture
def harness(
    ledger: Ledger, database_url: str, serve_fake: Callable[..., Served]
) -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def make(limits: Limits | None = None, **config: Any) -> Harness:
        served = serve_fake(limits=limits)
        if limits is not None:
            config["limits"] = limits
        made.append(Harness(ledger, database_url, served, **config))
        return made[-1]

    yield make
    for one in made:
        one.close()


def sent(message_id: str, minutes: float = 0, customer: str | None = None) -> Any:
    return event(message_id, "sent", minutes * 60, customer_message_id=customer)


def test_the_missing_final_statuses_are_filled_by_polling(
    harness: Callable[..., Harness], ledger: Ledger
) -> None:
    # Given 5 messages sent at T0; the webhook delivered 2; Qlara knows the outcome of all
    h = harness()
    for n in range(5):
        ledger.record(receipt(sent(f"m-{n}", customer=f"order-{n}")))
    ledger.record(receipt(event("m-0", "delivered", 5), event("m-1", "delivered", 6)))
    h.served.fake.add(
        [
            {
                "messageId": f"m-{n}",
                "customerMessageId": f"order-{n}",
                "channel": "sms",
                "status": status,
                "description": description,
            }
            for n, status, description in [
                (0, "DELIVERED", None),
                (1, "DELIVERED", None),
                (2, "DELIVERED", None),
                (3, "ERROR", "Absent subscriber"),
                (4, "SENT", None),
            ]
        ]
    )

    # When a round runs 20 minutes after (SMS waits 10)
    results = h.round()

    # Then the 3 pending were asked, in one batch call, and the 2 final ones filled in
    assert results == {
        "filled": 2,
        "still_pending": 1,
        "not_found": 0,
        "error": 0,
        "rate_limited": 0,
    }
    assert [(e["path"], e["status"]) for e in h.served.fake.log] == [("/api/messages/status", 200)]
    filled = ledger.get_message("m-3")
    assert filled is not None
    assert (filled.status, filled.error, filled.is_final) == ("error", "Absent subscriber", True)
    assert filled.latency_seconds is None  # the poll's time is not the delivery's
    assert [e.source for e in filled.events if e.status == "error"] == ["poll"]
    assert len(h.recorded) == 2
    still = ledger.get_message("m-4")
    assert still is not None
    assert still.is_final is False

    # And the next round, right after, asks nothing (the backoff), nor about the filled ones
    assert sum(h.round(NOW + timedelta(seconds=1)).values()) == 0
    # while after the backoff the one still pending is asked again
    assert h.round(NOW + timedelta(minutes=6))["still_pending"] == 1


def test_a_webhook_arriving_after_the_poll_takes_its_place(
    harness: Callable[..., Harness], ledger: Ledger
) -> None:
    h = harness()
    ledger.record(receipt(sent("m-1", customer="order-1")))
    h.served.fake.add([{"messageId": "m-1", "customerMessageId": "order-1", "status": "ERROR"}])
    assert h.round()["filled"] == 1

    ledger.record(receipt(event("m-1", "delivered", 4)))  # Qlara's late webhook, real time

    detail = ledger.get_message("m-1")
    assert detail is not None
    assert (detail.status, detail.latency_seconds) == ("delivered", 4.0)


def test_only_what_is_due_is_asked(harness: Callable[..., Harness], ledger: Ledger) -> None:
    h = harness()
    ledger.record(receipt(sent("young", minutes=15)))  # 5 minutes old at NOW: not yet
    ledger.record(receipt(sent("ancient", minutes=-60 * 50)))  # past the 48 h horizon
    ledger.record(receipt(sent("due")))
    alive = T0 + timedelta(minutes=19)  # the webhook is alive: an event a minute ago
    ledger.record(receipt(event("webhook-alive", "delivered", 19 * 60), received_at=alive))

    results = h.round()

    assert sum(results.values()) == 1
    assert results["not_found"] == 1  # "due", unknown to Qlara
    [entry] = h.served.fake.log
    assert entry["path"] == "/api/messages/status"


def test_while_the_webhook_is_silent_every_pending_message_is_asked(
    harness: Callable[..., Harness], ledger: Ledger
) -> None:
    h = harness()
    # The webhook's last event came 20 minutes ago
    ledger.record(receipt(event("last-webhook", "delivered", 0), received_at=T0))
    ledger.record(receipt(sent("young", minutes=19), received_at=T0))  # sent a minute ago
    assert sum(h.round().values()) == 1


def test_a_message_is_polled_at_most_max_polls_times(
    harness: Callable[..., Harness], ledger: Ledger
) -> None:
    h = harness(max_polls=2, backoff=timedelta(seconds=1))
    ledger.record(receipt(sent("m-1")))
    rounds = [sum(h.round(NOW + timedelta(minutes=k)).values()) for k in range(5)]
    assert rounds == [1, 1, 0, 0, 0]


def test_a_rate_limited_round_stops_and_loses_nothing(
    harness: Callable[..., Harness], ledger: Ledger
) -> None:
    # A fake allowing 1 call a "second" of 60 s, a client believing 50: the 2nd call is a 429
    h = harness(limits=Limits(per_second=1, per_minute=1000, time_scale=60))
    for n in range(150):  # 2 batches of at most 100
        ledger.record(receipt(sent(f"m-{n:03d}")))
    h.reconciler._make_client = lambda: QlaraClient(API_KEY, base_url=h.served.api, attempts=1)

    results = h.round()

    assert results["not_found"] == 100
    assert results["rate_limited"] == 50
    assert [e["status"] for e in h.served.fake.log] == [200, 429]


@pytest.mark.parametrize(
    ("on_file", "expected", "reason", "ok"),
    [
        (
            "https://ours.example.com/webhook/t0ken",
            "https://ours.example.com/webhook/t0ken",
            "ok",
            1,
        ),
        ("https://theirs.example.com/x", "https://ours.example.com/webhook/t0ken", "replaced", 0),
        (None, "https://ours.example.com/webhook/t0ken", "none", 0),
        ("https://ours.example.com/webhook/t0ken", None, "unknown", 0),
    ],
)
def test_the_registration_check_is_seen_by_the_scrape(
    harness: Callable[..., Harness],
    redis_url: str,
    namespace: str,
    on_file: str | None,
    expected: str | None,
    reason: str,
    ok: int,
) -> None:
    import redis as redis_lib
    from prometheus_client import CollectorRegistry

    from receiver.scrape import StateSources, state_collector

    h = harness(public_url=expected)
    if on_file is not None:
        h.served.fake.registration = {"id": "wh-1", "callbackUrl": on_file, "status": "ACTIVE"}
    client = redis_lib.Redis.from_url(redis_url)

    verdict = h.reconciler.check_registration(client, namespace)

    assert (verdict.ok, verdict.reason) == (bool(ok), reason)
    registry = CollectorRegistry()
    registry.register(
        state_collector(StateSources(queue_key=f"{namespace}:qlara-events", redis=lambda: client))
    )
    assert registry.get_sample_value("qlara_webhook_registration_ok", {"reason": reason}) == ok
