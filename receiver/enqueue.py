"""Putting receipts on the workers' Dramatiq queue without blocking the event loop.

Dramatiq's ``RedisBroker`` is synchronous: calling ``broker.enqueue`` from a request handler
would stall every other request for a Redis round trip, and for redis-py's default timeouts
and retries (5 to 58 seconds) when Redis is unreachable. So the receiver does not use the
broker. It runs Dramatiq's own ``dispatch.lua``, loaded from the installed ``dramatiq``
package, through ``redis.asyncio`` (hiredis parser), with the ``enqueue`` command and the
ARGV layout of ``RedisBroker._dispatch``::

    KEYS = [namespace]
    ARGV = ["enqueue", timestamp_ms, queue_name, broker_id, heartbeat_timeout,
            dead_message_ttl, do_maintenance="0", max_unpack_size,
            redis_message_id, message.encode()]

What lands in Redis is therefore exactly what ``RedisBroker.enqueue`` writes (the encoded
message under ``<namespace>:<queue>.msgs[redis_message_id]``, the id pushed on
``<namespace>:<queue>``, the broker id's heartbeat), and Dramatiq workers consume it as
their own. Two arguments differ only in value: ``do_maintenance`` is always ``"0"`` (the
workers' brokers do the maintenance) and ``max_unpack_size``, which bounds only the ``fetch``
and maintenance branches that an enqueue never runs, is Dramatiq's configured
``dramatiq_lua_max_stack`` or a conservative default. The script is called by EVALSHA and
loaded again on NOSCRIPT (a restarted Redis has forgotten it).

Failing is bounded: every Redis call has ``timeout`` for connecting and for each socket
operation, redis-py's retries are off, and each caller waits at most ``deadline`` overall
before :class:`EnqueueFailed` tells it to fall back to the spool.

Concurrent enqueues are micro-batched: one flusher task sends whatever is waiting (after one
more pass of the event loop) as one pipeline, so under load one round trip carries many
callers. Receipts
(:meth:`RedisEnqueuer.enqueue_receipt`) waiting for the same flush become ONE Dramatiq
message whose argument is the JSON array of their receipts, which the workers record in one
ledger transaction; envelopes (spool lines) are sent as they are, one EVALSHA each, in
order. A caller that gives up (deadline passed) is dropped from a batch not yet sent; if its
receipt was already sent, the outcome is unknown and the caller spools it anyway (as its own
single-receipt message). The receipt then reaches the queue twice under the same receipt
id, which the ledger records once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.resources
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import dramatiq
import redis.asyncio
import redis.exceptions
import structlog
from dramatiq.brokers.redis import (
    DEFAULT_DEAD_MESSAGE_TTL,
    DEFAULT_HEARTBEAT_TIMEOUT,
    DEFAULT_LUA_MAX_STACK,
)
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from qlara import Receipt
from qlara.wire import encode_argument, join_argument

log = structlog.get_logger(__name__)

DISPATCH_SCRIPT: bytes = (
    importlib.resources.files("dramatiq.brokers").joinpath("redis/dispatch.lua").read_bytes()
)
_DISPATCH_SHA = hashlib.sha1(DISPATCH_SCRIPT, usedforsecurity=False).hexdigest()
# RedisBroker halves the Lua stack limit it measures; 1000 is below half of any stock build.
_MAX_UNPACK_SIZE = DEFAULT_LUA_MAX_STACK or 1000
_MAX_BATCH = 512
_MAX_IN_FLIGHT = 2


class EnqueueFailed(Exception):
    """Redis did not take the message in time (down, slow, full or erroring).

    The message may or may not be in the queue; the caller keeps it (the spool).
    """


@dataclass(frozen=True, slots=True)
class Envelope:
    """One Dramatiq message as it goes into Redis: its queue, its Redis id, its bytes."""

    queue_name: str
    redis_message_id: str
    data: bytes

    @classmethod
    def of(cls, message: dramatiq.Message[object]) -> Envelope:
        """Wrap a message whose options carry ``redis_message_id``."""
        return cls(message.queue_name, message.options["redis_message_id"], message.encode())

    @classmethod
    def decode(cls, data: bytes) -> Envelope:
        """Rebuild from ``Message.encode()`` bytes.

        Raises ``dramatiq.errors.DecodeError`` for bytes that are not a message, ``ValueError``
        for a message without ``redis_message_id``.
        """
        message = dramatiq.Message.decode(data)
        redis_message_id = message.options.get("redis_message_id")
        if not isinstance(redis_message_id, str):
            raise ValueError("message has no redis_message_id")
        return cls(message.queue_name, redis_message_id, data)


def build_message(
    receipt: Receipt, *, queue_name: str, actor_name: str
) -> dramatiq.Message[object]:
    """The Dramatiq message that carries ``receipt`` to the workers' actor.

    The message id is the receipt id, so a replayed message is recognisably the same one;
    the single argument is the receipt's JSON as text (:mod:`qlara.wire`).
    """
    return dramatiq.Message(
        queue_name=queue_name,
        actor_name=actor_name,
        args=(encode_argument([receipt]),),
        kwargs={},
        options={"redis_message_id": str(uuid.uuid4())},
        message_id=receipt.receipt_id,
    )


def build_batch_message(
    receipts: Sequence[bytes], *, queue_name: str, actor_name: str
) -> dramatiq.Message[object]:
    """The Dramatiq message that carries several receipts to the workers' actor at once.

    ``receipts`` are receipts' JSON (:meth:`qlara.Receipt.encode`); the single argument is
    their JSON array as text (:func:`qlara.wire.join_argument`), which the actor records in
    one ledger transaction. The
    message id is fresh: a batch is not one receipt.
    """
    return dramatiq.Message(
        queue_name=queue_name,
        actor_name=actor_name,
        args=(join_argument(receipts),),
        kwargs={},
        options={"redis_message_id": str(uuid.uuid4())},
        message_id=uuid.uuid4().hex,
    )


@dataclass(frozen=True, slots=True)
class _Receipt:
    queue_name: str
    actor_name: str
    data: bytes


@dataclass(slots=True)
class _Pending:
    future: asyncio.Future[None]
    #: Sent as it is, in order with the other envelopes.
    envelope: Envelope | None = None
    #: Sent in one message with the other receipts of the same flush.
    receipt: _Receipt | None = None


class RedisEnqueuer:
    """Enqueues :class:`Envelope` values and receipts with Dramatiq's dispatch script, in
    bounded time.

    ``timeout`` (seconds) applies to connecting and to each socket operation; ``deadline``
    (seconds) bounds one caller's whole wait and one pipeline's whole run. At most
    ``max_in_flight`` pipelines wait for Redis at once (with ``appendfsync always`` each
    waits for an fsync, and Redis makes one fsync serve all that arrived meanwhile); one
    that carries envelopes runs alone, so envelopes land in the order they were submitted.
    Bound to the event loop that first uses it; :meth:`aclose` stops its flusher and closes
    its connections.
    """

    def __init__(
        self,
        redis_url: str,
        namespace: str,
        *,
        timeout: float,
        deadline: float,
        max_batch: int = _MAX_BATCH,
        max_in_flight: int = _MAX_IN_FLIGHT,
    ) -> None:
        self.namespace = namespace
        self.broker_id = str(uuid.uuid4())
        self._deadline = deadline
        self._timeout = timeout
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._client: redis.asyncio.Redis = redis.asyncio.Redis.from_url(
            redis_url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            retry_on_timeout=False,
            health_check_interval=0,
        )
        self._queue: deque[_Pending] = deque()
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(max_in_flight)
        self._flusher: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None

    async def enqueue(self, envelope: Envelope) -> None:
        """Put one message on its queue. Raises :class:`EnqueueFailed` within ``deadline``."""
        await self._wait(self._submit(_Pending(self._future(), envelope=envelope)))

    async def enqueue_receipt(self, receipt: bytes, *, queue_name: str, actor_name: str) -> None:
        """Put one receipt's JSON on ``queue_name`` for ``actor_name``, in one message with
        the other receipts waiting for the same flush (:func:`build_batch_message`).

        Raises :class:`EnqueueFailed` within ``deadline``; the receipt may then be in the
        queue or not, and the caller keeps it.
        """
        item = _Pending(self._future(), receipt=_Receipt(queue_name, actor_name, receipt))
        await self._wait(self._submit(item))

    async def enqueue_many(self, envelopes: Sequence[Envelope]) -> list[bool]:
        """Put messages on their queues, in order; says for each whether Redis took it.

        Never raises for Redis failures: a failed item is ``False``.
        """
        if self._closed:
            return [False] * len(envelopes)
        futures = [
            self._submit(_Pending(self._future(), envelope=envelope)) for envelope in envelopes
        ]
        results = await asyncio.gather(*futures, return_exceptions=True)
        return [not isinstance(result, BaseException) for result in results]

    async def claim(self, key: str, ttl_s: int) -> bool | None:
        """Set ``key`` if it is not set (expiring after ``ttl_s``): ``True`` when this call
        set it, ``False`` when it was set already, ``None`` when Redis did not answer within
        ``deadline``."""
        try:
            async with asyncio.timeout(self._deadline):
                return bool(await self._client.set(key, b"1", nx=True, ex=ttl_s))
        except (redis.exceptions.RedisError, OSError, TimeoutError):
            return None

    async def unclaim(self, key: str) -> None:
        """Delete ``key`` (best effort: a key left behind expires)."""
        with contextlib.suppress(redis.exceptions.RedisError, OSError, TimeoutError):
            async with asyncio.timeout(self._deadline):
                await self._client.delete(key)

    async def ping(self) -> bool:
        """Whether Redis answers a PING within ``deadline``."""
        try:
            async with asyncio.timeout(self._deadline):
                return bool(await self._client.ping())
        except (redis.exceptions.RedisError, OSError, TimeoutError):
            return False

    async def aclose(self) -> None:
        """Stop the flusher (failing what is still waiting) and close the connections."""
        self._closed = True
        tasks = [*self._sending]
        if self._flusher is not None:
            tasks.append(self._flusher)
            self._flusher = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        while self._queue:
            item = self._queue.popleft()
            if not item.future.done():
                item.future.set_exception(EnqueueFailed("receiver shutting down"))
        await self._client.aclose()

    async def _wait(self, future: asyncio.Future[None]) -> None:
        # A timer that fails the future, not asyncio.timeout(): on Python 3.11 every
        # asyncio.get_running_loop() is a getpid() system call, and a timeout block makes
        # three. Once failed, the item is skipped by a flush not yet sent.
        timer = future.get_loop().call_later(self._deadline, _expire, future)
        try:
            await future
        finally:
            timer.cancel()

    def _future(self) -> asyncio.Future[None]:
        if self._closed:
            raise EnqueueFailed("receiver shutting down")
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop.create_future()

    def _submit(self, item: _Pending) -> asyncio.Future[None]:
        self._queue.append(item)
        self._wake.set()
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_forever(), name="redis-enqueue")
        return item.future

    async def _flush_forever(self) -> None:
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            # One more pass of the event loop lets requests already read reach the queue, and
            # waiting for a slot lets the batch grow too. Under load that means fewer, larger
            # queue messages: at 32 connections 9% less receiver CPU per request, and the
            # workers pay per message. (Nothing is held yet if this is cancelled here.)
            await asyncio.sleep(0)
            await self._slots.acquire()
            held = 1
            batch: list[_Pending] = []
            try:
                while self._queue and len(batch) < self._max_batch:
                    item = self._queue.popleft()
                    if not item.future.done():  # a caller that gave up is not sent
                        batch.append(item)
                if batch and any(item.envelope is not None for item in batch):
                    # Envelopes (spool lines) land in order: no other pipeline may overtake.
                    while held < self._max_in_flight:
                        await self._slots.acquire()
                        held += 1
            except BaseException:  # cancelled at shutdown while waiting for the slots
                self._release(held)
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(EnqueueFailed("receiver shutting down"))
                raise
            if not batch:
                self._release(held)
                continue
            task = asyncio.create_task(self._send(batch, held), name="redis-enqueue-send")
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    def _release(self, held: int) -> None:
        for _ in range(held):
            self._slots.release()

    async def _send(self, batch: list[_Pending], held: int) -> None:
        # Every future is settled on the way out, whatever happens (even cancellation at
        # shutdown): a caller must never wait on a message nobody will answer for.
        owners, envelopes = _compose(batch)
        errors: list[str | None] = ["cancelled"] * len(envelopes)
        try:
            async with asyncio.timeout(self._deadline):
                errors = await self._dispatch(envelopes)
        except Exception as exc:  # Redis down, slow, refusing, or anything else: spool it
            reason = type(exc).__name__
            log.warning("redis_enqueue_failed", error=reason, batch=len(batch))
            errors = [reason] * len(envelopes)
        finally:
            self._release(held)
            for items, error in zip(owners, errors, strict=True):
                for item in items:
                    if item.future.done():
                        continue
                    if error is None:
                        item.future.set_result(None)
                    else:
                        item.future.set_exception(EnqueueFailed(error))

    async def _dispatch(self, envelopes: list[Envelope]) -> list[str | None]:
        """Run the script once per envelope in one pipeline; an error name or None each."""
        results = await self._run_pipeline(envelopes)
        if any(isinstance(result, redis.exceptions.NoScriptError) for result in results):
            await self._client.script_load(DISPATCH_SCRIPT)
            retry = [
                i for i, r in enumerate(results) if isinstance(r, redis.exceptions.NoScriptError)
            ]
            again = await self._run_pipeline([envelopes[i] for i in retry])
            for i, result in zip(retry, again, strict=True):
                results[i] = result
        errors: list[str | None] = []
        for result in results:
            if isinstance(result, Exception):
                errors.append(type(result).__name__)
            else:
                errors.append(None)
        failed = [e for e in errors if e is not None]
        if failed:
            log.warning("redis_enqueue_refused", error=failed[0], failed=len(failed))
        return errors

    async def _run_pipeline(self, envelopes: list[Envelope]) -> list[object]:
        pipe = self._client.pipeline(transaction=False)
        now_ms = int(time.time() * 1000)
        for envelope in envelopes:
            pipe.evalsha(
                _DISPATCH_SHA,
                1,
                self.namespace,
                "enqueue",
                now_ms,
                envelope.queue_name,
                self.broker_id,
                DEFAULT_HEARTBEAT_TIMEOUT,
                DEFAULT_DEAD_MESSAGE_TTL,
                "0",
                _MAX_UNPACK_SIZE,
                envelope.redis_message_id,
                envelope.data,
            )
        return list(await pipe.execute(raise_on_error=False))


def _expire(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_exception(EnqueueFailed("deadline passed"))


def _compose(batch: list[_Pending]) -> tuple[list[list[_Pending]], list[Envelope]]:
    """The envelopes one flush sends, with the items each answers for: every envelope item
    as it is, in order, then one batch message per queue and actor for the receipts."""
    owners: list[list[_Pending]] = []
    envelopes: list[Envelope] = []
    receipts: dict[tuple[str, str], list[_Pending]] = {}
    for item in batch:
        if item.envelope is not None:
            owners.append([item])
            envelopes.append(item.envelope)
        elif item.receipt is not None:
            receipts.setdefault((item.receipt.queue_name, item.receipt.actor_name), []).append(item)
    for (queue_name, actor_name), items in receipts.items():
        data = [item.receipt.data for item in items if item.receipt is not None]
        message = build_batch_message(data, queue_name=queue_name, actor_name=actor_name)
        owners.append(items)
        envelopes.append(Envelope.of(message))
    return owners, envelopes
