"""A message that takes its worker process down with it is dead-lettered after a few tries."""

from __future__ import annotations

import threading
import time
from typing import Any

import structlog
from dramatiq import Broker, Middleware
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import SkipMessage
from redis import RedisError
from redis.commands.core import Script

from workers.connection import LedgerConnection
from workers.dead_letters import bury

log = structlog.get_logger(__name__)

#: How long a delivery count outlives its last delivery. Counts are deleted when the message
#: completes; this only bounds what a message that vanished otherwise leaves behind.
COUNT_TTL_S = 7 * 86_400


#: One delivery counted, in one round trip: the count after it, its expiry renewed. A
#: MULTI/INCR/EXPIRE/EXEC pipeline did the same in four commands, and its Python cost was a
#: twelfth of a worker's CPU at full load.
_COUNT = """
local count = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
return count
"""


def delivery_count_key(namespace: str, message_id: str) -> str:
    """The Redis key counting unfinished deliveries of one message."""
    return f"{namespace}:__deliveries__.{message_id}"


class DeliveryLimit(Middleware):
    """Dead-letters a message once it has been delivered ``max_deliveries`` times without
    its worker living to report the outcome (SIGKILL, OOM, a crash in native code).

    RedisBroker requeues such a message after the heartbeat timeout, forever. The count has
    to live outside the process that dies, so each delivery increments a Redis counter
    before processing; any outcome the process survives to report (success, retry, failure)
    deletes it. A delivery that finds the count above ``max_deliveries`` writes the dead
    letter (``"killed its worker N times"``) and skips the message, which acknowledges it.

    Counting fails open: if Redis cannot count, the message is processed uncounted.
    Must sit first in the middleware list so its count is taken before any other work.

    The count of a message that succeeded is deleted in batches (one ``UNLINK`` for up to
    ``FORGET_BATCH`` keys, or whatever gathered in ``FORGET_AFTER_S``), saving each message a
    round trip: an acknowledged message is not delivered again, and a count left behind by a
    process that dies first only expires. A failed message's count is deleted at once, since
    its retry comes back under the same id.
    """

    #: Succeeded messages whose counts are deleted together, at most.
    FORGET_BATCH = 256
    #: How long a succeeded message's count may wait for the batch (seconds).
    FORGET_AFTER_S = 0.5

    def __init__(self, connection: LedgerConnection, *, max_deliveries: int, park_ms: int) -> None:
        self._connection = connection
        self._max_deliveries = max_deliveries
        self._park_ms = park_ms
        self._done: list[str] = []
        self._done_lock = threading.Lock()
        self._flushed_at = time.monotonic()
        self._script: Script | None = None

    def _count(self, broker: RedisBroker) -> Script:
        """The counting script, bound to the broker's client (loaded into Redis by its
        first call, and again after a Redis restart forgot it)."""
        if self._script is None:
            self._script = broker.client.register_script(_COUNT)
        return self._script

    def before_process_message(self, broker: Broker, message: Any) -> None:
        redis_broker = _redis_broker(broker)
        key = delivery_count_key(redis_broker.namespace, message.message_id)
        try:
            count = int(self._count(redis_broker)(keys=[key], args=[COUNT_TTL_S]))
        except RedisError as exc:
            log.warning(
                "delivery not counted", message_id=message.message_id, error=type(exc).__name__
            )
            return
        if count <= self._max_deliveries:
            return
        kills = count - 1
        written = bury(
            broker,
            message,
            connection=self._connection,
            reason=f"killed its worker {kills} times",
            kind="poison",
            attempts=kills,
            park_ms=self._park_ms,
        )
        # A parked copy keeps the count, so it is dead-lettered as soon as it comes back.
        if written:
            self._forget(redis_broker, key)
        raise SkipMessage(f"message {message.message_id} killed its worker {kills} times")

    def after_process_message(
        self,
        broker: Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        redis_broker = _redis_broker(broker)
        key = delivery_count_key(redis_broker.namespace, message.message_id)
        if exception is not None:
            self._forget(redis_broker, key)
            return
        with self._done_lock:
            self._done.append(key)
            now = time.monotonic()
            if len(self._done) < self.FORGET_BATCH and now - self._flushed_at < self.FORGET_AFTER_S:
                return
            keys, self._done, self._flushed_at = self._done, [], now
        self._forget(redis_broker, *keys)

    def after_worker_shutdown(self, broker: Broker, worker: Any) -> None:
        with self._done_lock:
            keys, self._done = self._done, []
        if keys:
            self._forget(_redis_broker(broker), *keys)

    @staticmethod
    def _forget(broker: RedisBroker, *keys: str) -> None:
        try:
            broker.client.unlink(*keys)
        except RedisError as exc:
            # The TTL removes it eventually; a stale count only makes a later kill count more.
            log.warning("delivery count not deleted", error=type(exc).__name__)


def _redis_broker(broker: Broker) -> RedisBroker:
    if not isinstance(broker, RedisBroker):
        raise TypeError(f"DeliveryLimit needs a RedisBroker, got {type(broker).__name__}")
    return broker
