"""A RedisBroker that reclaims what a lost connection left behind.

RedisBroker's ``fetch`` moves message ids from the queue into this worker's acks set in
Redis, then returns the messages. When the connection breaks in between (Redis killed or
restarted, a network cut), Redis has done the move but the worker never receives the
messages. Dramatiq puts a worker's unacknowledged messages back on the queue only once that
worker stops heartbeating, and a worker that survives the outage keeps heartbeating under
the same id: those messages would sit in its acks set, unprocessed, for as long as it runs.

A call that times out is the same case (Dramatiq's issue #894): the client gave up, but
the script may still run on the server once the server answers again, as after a stall
(SIGSTOP, a long fork, a saturated link). Dramatiq handles only ``redis.ConnectionError``;
a ``redis.TimeoutError`` from a fetch escaped as an "unexpected error", and the message it
had moved sat under the live worker's id until that worker restarted. A timeout is
therefore raised as :class:`~dramatiq.errors.ConnectionClosed`, which Dramatiq answers by
reconnecting (fetch) or retrying (ack, nack), and treated as a lost connection here.

A Redis out of memory (``maxmemory`` with ``noeviction``) refuses the acknowledgement of a
message already recorded, with a ``ResponseError`` Dramatiq does not retry: the message stayed
in the worker's acks set until a restart. That error is raised as
:class:`~dramatiq.errors.ConnectionClosed` too, so Dramatiq retries the acknowledgement until
Redis takes it; nothing was lost in transit, so the worker keeps its id.

So after any lost connection the broker takes a fresh worker id. The old id stops
heartbeating; after ``heartbeat_timeout`` queue maintenance (run by any worker) puts every
message still held under it back on the queue. A message that was in flight under the old
id may then be processed twice, which the ledger makes harmless: it records each receipt
once.
"""

from __future__ import annotations

import threading
from typing import Any
from uuid import uuid4

import redis
import structlog
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.errors import ConnectionClosed

log = structlog.get_logger(__name__)


class ReclaimingRedisBroker(RedisBroker):
    """RedisBroker whose consumers take a fresh worker id after a lost connection."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        self._identity_lock = threading.Lock()

    def consume(
        self, queue_name: str, prefetch: int = 1, timeout: int = 5000
    ) -> _ReclaimingConsumer:
        """A consumer of ``queue_name`` (see :class:`RedisBroker.consume`)."""
        return _ReclaimingConsumer(self, queue_name, prefetch, timeout)  # type: ignore[no-untyped-call]

    def abandon_identity(self, reason: str) -> None:
        """Take a fresh worker id, so that what the old one holds is requeued after the
        heartbeat timeout."""
        with self._identity_lock:
            old, self.broker_id = self.broker_id, str(uuid4())
        log.warning(
            "broker_identity_renewed",
            reason=reason,
            old_worker_id=old,
            worker_id=self.broker_id,
            requeued_after_s=self.heartbeat_timeout / 1000,
        )


class _ReclaimingConsumer(_RedisConsumer):
    broker: ReclaimingRedisBroker

    def _lost(self, exc: Exception) -> ConnectionClosed:
        """The error to raise for ``exc``, as a lost connection. A connection that broke or a
        call that timed out may have left messages under this worker's id: take a fresh one.
        Redis out of memory lost nothing in transit: keep it, and let Dramatiq retry."""
        closed = (
            exc if isinstance(exc, ConnectionClosed) else ConnectionClosed(exc)  # type: ignore[no-untyped-call]
        )
        if not isinstance(exc, redis.exceptions.OutOfMemoryError):
            cause = closed.args[0] if closed.args else closed
            self.broker.abandon_identity(type(cause).__name__)
        return closed

    def __next__(self) -> Any:
        try:
            return super().__next__()  # type: ignore[no-untyped-call]
        except _LOST as exc:
            raise self._lost(exc) from None

    def ack(self, message: Any) -> None:
        try:
            super().ack(message)  # type: ignore[no-untyped-call]
        except _LOST as exc:
            raise self._lost(exc) from None

    def nack(self, message: Any) -> None:
        try:
            super().nack(message)  # type: ignore[no-untyped-call]
        except _LOST as exc:
            raise self._lost(exc) from None


#: What the consumer raises as a lost connection (see the module docstring).
_LOST = (ConnectionClosed, redis.TimeoutError, redis.exceptions.OutOfMemoryError)
