"""The RedisBroker, its middleware and the ``record_receipt`` actor, set up in one place."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.message import generate_unique_id
from dramatiq.middleware import Retries

import metrics
from ledger import LedgerUnavailable, Tally
from qlara import Receipt
from qlara.wire import ACTOR_NAME, QUEUE_NAME, encode_argument
from workers.config import WorkerConfig
from workers.connection import LedgerConnection, connect_migrated
from workers.countries import CountryLabels
from workers.dead_letters import DeadLetters
from workers.delivery_limit import DeliveryLimit
from workers.errors import PermanentFailure
from workers.reclaim import ReclaimingRedisBroker
from workers.reconcile import Reconciler, client_for
from workers.recorder import ReceiptRecorder, RecordedHook
from workers.redaction import redact_dramatiq_logs
from workers.retention import Retention

#: Redis socket timeouts (seconds). The broker issues no blocking commands, so a reply that
#: takes longer than this means a dead connection, not a slow queue.
SOCKET_TIMEOUT_S = 5.0
#: How often an idle pooled connection is pinged before reuse (seconds).
HEALTH_CHECK_INTERVAL_S = 15


@dataclass(frozen=True, slots=True)
class Assembly:
    """A broker with what the worker runner and redrive need from it."""

    broker: RedisBroker
    connection: LedgerConnection
    recorder: ReceiptRecorder


def redis_client(url: str) -> redis.Redis:
    """A Redis client that fails fast on a dead server and checks idle connections."""
    return redis.Redis.from_url(
        url,
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=SOCKET_TIMEOUT_S,
        socket_keepalive=True,
        health_check_interval=HEALTH_CHECK_INTERVAL_S,
    )


def assemble(config: WorkerConfig, *, on_recorded: Iterable[RecordedHook] = ()) -> Assembly:
    """Build the broker, set it as Dramatiq's global broker and declare the actor on it.

    Every recorded receipt is counted: in the ledger, in its own transaction, for the
    counters kept there (:func:`metrics.tally_recorded`, under this process's
    :func:`metrics.counts_owner` and ``config.writer``), and in this process's metrics
    (:func:`metrics.count_recorded`) before the ``on_recorded`` hooks run. Middleware order
    matters: ``before_`` hooks run in list order and ``after_`` hooks in reverse, so
    DeliveryLimit counts a delivery before anything else and DeadLetters reads the verdict
    of Retries.
    """
    connection = LedgerConnection(
        config.database_url, **({} if config.migrate else {"connect": connect_migrated})
    )
    middleware = [
        DeliveryLimit(
            connection, max_deliveries=config.max_deliveries, park_ms=config.max_backoff_ms
        ),
        DeadLetters(connection, park_ms=config.max_backoff_ms),
        Retries(
            max_retries=config.max_retries,
            min_backoff=config.min_backoff_ms,
            max_backoff=config.max_backoff_ms,
            retry_when=retry_when(config.max_retries),
        ),
        Retention(
            connection,
            retention_days=config.retention_days,
            interval_s=config.purge_interval_s,
        ),
        CountryLabels(connection, config.country_labels),
        connection,
    ]
    tally = Tally(metrics.counts_owner(), config.writer, metrics.tally_recorded)
    if config.reconcile is not None:
        reconcile = config.reconcile
        middleware.insert(
            -1, Reconciler(connection, reconcile, lambda: client_for(reconcile), tally=tally)
        )
    broker = ReclaimingRedisBroker(
        client=redis_client(config.redis_url),
        namespace=config.namespace,
        heartbeat_timeout=config.heartbeat_timeout_ms,
        maintenance_chance=config.maintenance_chance,
        middleware=middleware,
    )
    dramatiq.set_broker(broker)
    # Counting comes first, so a hook of the caller's sees the counters already moved.
    recorder = ReceiptRecorder(connection, [metrics.count_recorded, *on_recorded], tally=tally)

    def record_receipt(receipt_json: object) -> None:
        recorder(receipt_json)

    redact_dramatiq_logs(record_receipt.__module__)

    dramatiq.actor(
        actor_name=ACTOR_NAME,
        queue_name=QUEUE_NAME,
        broker=broker,
        throws=(PermanentFailure,),
    )(record_receipt)
    return Assembly(broker=broker, connection=connection, recorder=recorder)


def retry_when(max_retries: int) -> Callable[[int, BaseException], bool]:
    """Dramatiq's ``retry_when``: a message that failed because the ledger is unavailable
    (down, refusing, its disk full) is retried for as long as that lasts, at the longest
    backoff once it is reached; any other failure ``max_retries`` times at most.

    An outage is not the event's fault: spending its retries on one would make it a dead
    letter the moment the ledger is back (the dead letter, unlike the event, gets written),
    leaving it out of the ledger until someone redrives it.
    """

    def retry(retries: int, exception: BaseException) -> bool:
        return isinstance(exception, LedgerUnavailable) or retries < max_retries

    return retry


def build_broker(config: WorkerConfig, *, on_recorded: Iterable[RecordedHook] = ()) -> RedisBroker:
    """Build the RedisBroker for ``config``, make it Dramatiq's global broker and declare the
    ``record_receipt`` actor on it. ``on_recorded`` hooks run after every recorded receipt.

    The ledger is not opened here: a worker opens it at boot, and its first use opens it
    otherwise.
    """
    return assemble(config, on_recorded=on_recorded).broker


def enqueue_receipt(broker: dramatiq.Broker, receipt: Receipt) -> None:
    """Enqueue ``receipt`` for the workers, in the wire format the receiver uses.

    The message id is the receipt id. Raises what the broker raises (``redis.RedisError``).
    """
    broker.enqueue(receipt_message(encode_argument([receipt]), message_id=receipt.receipt_id))


def receipt_message(receipt_json: str, *, message_id: str | None = None) -> dramatiq.Message[None]:
    """A message carrying ``receipt_json`` to the ``record_receipt`` actor (a fresh message id
    unless one is given)."""
    return dramatiq.Message(
        queue_name=QUEUE_NAME,
        actor_name=ACTOR_NAME,
        args=(receipt_json,),
        kwargs={},
        options={},
        message_id=message_id or generate_unique_id(),
    )
