"""The reconciler: ask Qlara's status API for what the webhook never delivered.

Every ``interval_s`` one worker process (the first to take a Redis key for the round, as
retention does) takes the messages due for a poll (:mod:`ledger.polling`): pending longer than
their channel's ``after``, or all pending ones while the webhook is silent (no event from it
for ``silence``), but not past their channel's expiry horizon; each polled at most
``max_polls`` times, with a backoff that doubles per poll. It asks Qlara in batches, one
channel per call (by ``customerMessageId`` when the message has one, as the status API is
keyed; else by ``messageId``), and records every final status Qlara gives through the same
idempotent path as a webhook's: a receipt (``poll:<message>:<status>``) whose event has
``source`` = ``poll`` and the poll's time (:func:`qlara.status.rank` ranks it below anything
the webhook reports). A message past its horizon is no longer polled: it is unresolved,
counted in ``qlara_messages_unresolved``.

It never spends more than ``budget_share`` of the account's per-minute limit (the client's
limiter holds it to the limits in any case, and a 429 stops the round). Each poll is counted
in ``qlara_reconcile_polls_total{result}``, each call in ``qlara_api_requests_total``.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import structlog
from dramatiq import Broker, Worker
from dramatiq.brokers.redis import RedisBroker
from redis import RedisError

import metrics
from ledger import DuePoll, Horizon, Ledger, Tally
from metrics.state import registration_key
from qlara import FINAL_STATUSES, DeliveryEvent, Receipt, Shape, Source
from qlara.events import PLACEHOLDER_PREFIX
from qlara_api import (
    BATCH,
    CircuitOpen,
    Limits,
    PolledStatus,
    QlaraApiError,
    QlaraClient,
    RateLimited,
    RateLimiter,
    Variant,
)
from workers.connection import LedgerConnection
from workers.dead_letters import failure_reason
from workers.retention import PeriodicThread, take_round

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ReconcileConfig:
    """How the reconciler runs (see the module docstring). Durations in ``timedelta``."""

    api_key: str = field(repr=False)
    after: Horizon
    horizon: Horizon
    api_url: str = "https://lora-api.agiletelecom.com/api"
    variant: Variant = "messages"
    limits: Limits = field(default_factory=Limits)
    interval_s: float = 60.0
    silence: timedelta = timedelta(minutes=15)
    max_polls: int = 10
    backoff: timedelta = timedelta(minutes=5)
    budget_share: float = 0.5
    #: The URL that should be on file with Qlara (``None``: the check cannot tell).
    public_url: str | None = field(default=None, repr=False)
    registration_every_s: float = 300.0

    def __post_init__(self) -> None:
        if not self.interval_s > 0 or self.max_polls < 1 or not 0 < self.budget_share <= 1:
            raise ValueError("reconcile: interval, max polls and budget share must be positive")


def client_for(config: ReconcileConfig) -> QlaraClient:
    """The Qlara client of ``config``, every answer counted in ``qlara_api_requests_total``."""
    return QlaraClient(
        config.api_key,
        base_url=config.api_url,
        variant=config.variant,
        limiter=RateLimiter(config.limits),
        on_answer=lambda endpoint, code: metrics.API_REQUESTS.labels(endpoint, code).inc(),
    )


@dataclass(frozen=True, slots=True)
class Round:
    """What one round did: polls by result."""

    polled: int
    results: dict[str, int]


#: How long a registration verdict stands in Redis without a newer check (then: unknown).
REGISTRATION_TTL_S = 3600


def registration_verdict(client: QlaraClient, expected: str | None) -> Registration:
    """Whether the webhook on file with Qlara is ``expected`` (see :class:`Registration`)."""
    try:
        on_file = client.registration()
    except (QlaraApiError, ValueError) as exc:
        return Registration(ok=False, reason="unknown", detail=type(exc).__name__)
    if on_file is None:
        return Registration(ok=False, reason="none")
    if expected is None:
        return Registration(ok=False, reason="unknown", detail="no WEBHOOK_PUBLIC_URL to compare")
    if not hmac.compare_digest(on_file.url.encode(), expected.encode()):
        return Registration(ok=False, reason="replaced")
    return Registration(ok=True, reason="ok")


@dataclass(frozen=True, slots=True)
class Registration:
    """A registration check's verdict: ``ok``, and why not (``none``: nothing registered;
    ``replaced``: another URL is on file; ``unknown``: Qlara could not be asked, or the
    expected URL is not configured). Never holds a URL: it carries the token."""

    ok: bool
    reason: str
    detail: str | None = None

    def encode(self) -> bytes:
        return msgspec.json.encode({"ok": self.ok, "reason": self.reason})


def reconcile_key(namespace: str) -> str:
    """The Redis key a process holds while its round is the one for the current interval."""
    return f"{namespace}:__reconcile__"


class Reconciler(PeriodicThread):
    """After worker boot, a daemon thread runs a round every ``interval_s``; it stops at
    worker shutdown. ``client`` builds the Qlara client (on first use, in the thread)."""

    def __init__(
        self,
        connection: LedgerConnection,
        config: ReconcileConfig,
        client: Callable[[], QlaraClient],
        *,
        recorded: Callable[[Receipt, Any], None] = metrics.count_recorded,
        tally: Tally | None = None,
    ) -> None:
        super().__init__("qlara-reconcile", self._run)
        self._connection = connection
        self.config = config
        self._make_client = client
        self._client: QlaraClient | None = None
        self._recorded = recorded
        self._tally = tally

    def before_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        super().before_worker_shutdown(broker, worker)
        if self._client is not None:
            self._client.close()
            self._client = None

    def _run(self, broker: Broker) -> None:
        next_check = 0.0
        while not self._stop.wait(self.config.interval_s):
            if not self._take_round(broker):
                continue
            if time.monotonic() >= next_check and isinstance(broker, RedisBroker):
                next_check = time.monotonic() + self.config.registration_every_s
                self.check_registration(broker.client, broker.namespace)
            try:
                done = self.reconcile_once()
            except Exception as exc:
                log.warning("reconcile round failed", error=failure_reason(exc))
                continue
            if done.polled:
                log.info("reconcile round done", polled=done.polled, **done.results)

    def _take_round(self, broker: Broker) -> bool:
        # Without Redis every process would poll: skip the round. A little shorter than the
        # interval, so the next round's holder is free to take it on time.
        key = reconcile_key(broker.namespace) if isinstance(broker, RedisBroker) else ""
        return take_round(broker, key, self.config.interval_s - 0.1, without_redis=False)

    def check_registration(self, redis: Any, namespace: str) -> Registration:
        """Ask Qlara which webhook URL it has on file, compare it with ``public_url``, and keep
        the verdict in Redis for the scrape (``qlara_webhook_registration_ok``)."""
        verdict = registration_verdict(self.client, self.config.public_url)
        if not verdict.ok:
            log.warning("webhook registration check", ok=False, reason=verdict.reason)
        try:
            redis.set(registration_key(namespace), verdict.encode(), ex=REGISTRATION_TTL_S)
        except RedisError as exc:
            log.warning("registration verdict not stored", error=failure_reason(exc))
        return verdict

    @property
    def client(self) -> QlaraClient:
        if self._client is None:
            self._client = self._make_client()
        return self._client

    def reconcile_once(self, now: datetime | None = None) -> Round:
        """One round: poll what is due, record what Qlara says is final. Returns the counts."""
        at = now if now is not None else datetime.now(UTC)
        ledger = self._connection.ledger
        config = self.config
        after = config.after
        if self._webhook_silent(ledger, at):
            after = Horizon(by_channel={}, default=timedelta(0))
        client = self.client
        per_round = client.limiter.limits.per_minute * config.interval_s / 60 * config.budget_share
        calls = max(int(per_round), 1)
        due = ledger.due_polls(
            after=after,
            horizon=config.horizon,
            max_polls=config.max_polls,
            limit=calls * BATCH,
            now=at,
        )
        by_channel: dict[str | None, list[DuePoll]] = {}
        for item in due:
            by_channel.setdefault(item.channel, []).append(item)
        results: dict[str, int] = dict.fromkeys(metrics.POLL_RESULTS, 0)
        noted: list[tuple[DuePoll, str]] = []
        receipts: list[Receipt] = []
        stopped = False
        for channel in sorted(by_channel, key=lambda c: c or ""):
            for start in range(0, len(by_channel[channel]), BATCH):
                chunk = by_channel[channel][start : start + BATCH]
                if stopped:
                    break
                answers, failure = self._ask(client, chunk, channel)
                for item in chunk:
                    result = failure or self._result(item, answers, at, receipts)
                    results[result] += 1
                    metrics.RECONCILE_POLLS.labels(result).inc()
                    noted.append((item, result))
                stopped = failure is not None
        if receipts:
            recorded_results = ledger.record_many(receipts, tally=self._tally)
            for receipt, recorded in zip(receipts, recorded_results, strict=True):
                self._recorded(receipt, recorded)
        ledger.note_polls(noted, config.backoff, now=at)
        return Round(polled=len(noted), results=results)

    def _webhook_silent(self, ledger: Ledger, now: datetime) -> bool:
        last = ledger.last_event_at()
        return bool(last) and max(last.values()) < now - self.config.silence

    def _ask(
        self, client: QlaraClient, chunk: list[DuePoll], channel: str | None
    ) -> tuple[dict[str, PolledStatus], str | None]:
        asked = [_asked_id(item) for item in chunk]
        try:
            return client.statuses(asked, channel), None
        except RateLimited as exc:
            log.warning("reconcile rate limited", retry_after=exc.retry_after)
            return {}, "rate_limited"
        except CircuitOpen:
            return {}, "error"
        except (QlaraApiError, ValueError) as exc:
            log.warning("reconcile poll failed", error=failure_reason(exc))
            return {}, "error"

    def _result(
        self,
        item: DuePoll,
        answers: dict[str, PolledStatus],
        at: datetime,
        receipts: list[Receipt],
    ) -> str:
        answer = answers.get(_asked_id(item))
        if answer is None:
            return "not_found"
        if answer.status not in FINAL_STATUSES:
            return "still_pending"
        receipts.append(_receipt(item, answer, at))
        return "filled"


def _asked_id(item: DuePoll) -> str:
    """The id Qlara's status API is asked by: the customer message id when there is one."""
    if item.customer_message_id:
        return item.customer_message_id
    return item.message_id.removeprefix(PLACEHOLDER_PREFIX)


def _receipt(item: DuePoll, answer: PolledStatus, at: datetime) -> Receipt:
    raw = msgspec.json.encode(
        {
            "polled": True,
            "id": _asked_id(item),
            "status": answer.status,
            "description": answer.description,
        }
    )
    event = DeliveryEvent(
        message_id=item.message_id,
        status=answer.status,
        event_time=at,
        shape=Shape.POLL,
        raw=raw,
        channel=item.channel,
        customer_message_id=item.customer_message_id,
        error=answer.description if answer.status != "delivered" else None,
        time_from_receipt=True,
        source=Source.POLL,
    )
    return Receipt(
        receipt_id=f"poll:{item.message_id}:{answer.status}",
        received_at=at.timestamp(),
        events=(event,),
    )
