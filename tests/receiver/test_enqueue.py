"""The async enqueue writes what Dramatiq's RedisBroker writes, and Dramatiq consumes it."""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import dramatiq
import msgspec
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker

from qlara import Receipt
from receiver.enqueue import EnqueueFailed, Envelope, RedisEnqueuer, build_message
from tests.receiver.conftest import ACTOR, QUEUE, closed_redis_url

pytestmark = pytest.mark.redis


def receipt(receipt_id: str) -> Receipt:
    return Receipt(receipt_id=receipt_id, received_at=time.time())


def envelope(receipt_id: str) -> Envelope:
    return Envelope.of(build_message(receipt(receipt_id), queue_name=QUEUE, actor_name=ACTOR))


def run(coro_fn: Any, url: str, namespace: str, **kwargs: Any) -> Any:
    """Run ``coro_fn(enqueuer)`` on a fresh loop with a fresh enqueuer."""

    async def main() -> Any:
        enqueuer = RedisEnqueuer(
            url,
            namespace,
            # generous unless a test is about them: a busy machine must not spool an enqueue
            timeout=kwargs.get("timeout", 5.0),
            deadline=kwargs.get("deadline", 10.0),
        )
        try:
            return await coro_fn(enqueuer)
        finally:
            await enqueuer.aclose()

    return asyncio.run(main())


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_url)
    yield connection
    connection.close()


def test_an_enqueued_message_is_stored_exactly_as_redis_broker_stores_one(
    redis_url: str, namespace: str, client: redis.Redis
) -> None:
    # Given the same message enqueued by RedisBroker in one namespace and by us in another
    message = build_message(receipt("r-1"), queue_name=QUEUE, actor_name=ACTOR)
    theirs_ns, ours_ns = f"{namespace}-broker", f"{namespace}-ours"
    broker = RedisBroker(url=redis_url, namespace=theirs_ns)
    broker.declare_queue(QUEUE)
    sent = broker.enqueue(message)
    ours = Envelope(QUEUE, sent.options["redis_message_id"], sent.encode())
    run(lambda e: e.enqueue(ours), redis_url, ours_ns)

    try:
        # Then both wrote the same keys with the same contents
        for suffix in (f":{QUEUE}", f":{QUEUE}.msgs"):
            theirs_type = client.type(theirs_ns + suffix)
            assert client.type(ours_ns + suffix) == theirs_type
        assert client.lrange(f"{ours_ns}:{QUEUE}", 0, -1) == client.lrange(
            f"{theirs_ns}:{QUEUE}", 0, -1
        )
        assert client.hgetall(f"{ours_ns}:{QUEUE}.msgs") == client.hgetall(
            f"{theirs_ns}:{QUEUE}.msgs"
        )
        assert client.zcard(f"{ours_ns}:__heartbeats__") == 1
    finally:
        broker.close()
        for key in client.scan_iter(match=f"{theirs_ns}*"):
            client.delete(key)


def test_a_dramatiq_worker_consumes_what_was_enqueued(redis_url: str, namespace: str) -> None:
    # Given a Dramatiq worker on the namespace, with the actor the receiver addresses
    broker = RedisBroker(url=redis_url, namespace=namespace)
    seen: list[str] = []
    done = threading.Event()

    @dramatiq.actor(broker=broker, queue_name=QUEUE, actor_name=ACTOR, max_retries=0)
    def record_receipt(encoded: str) -> None:
        seen.append(Receipt.decode(encoded).receipt_id)
        if len(seen) == 3:
            done.set()

    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=50)
    worker.start()
    try:
        # When three receipts are enqueued
        results = run(
            lambda e: e.enqueue_many([envelope("r-1"), envelope("r-2"), envelope("r-3")]),
            redis_url,
            namespace,
        )

        # Then the worker receives them, in order
        assert results == [True, True, True]
        assert done.wait(timeout=15)
        assert seen == ["r-1", "r-2", "r-3"]
    finally:
        worker.stop()
        broker.close()


def test_many_concurrent_enqueues_all_land_in_submission_order(
    redis_url: str, namespace: str, client: redis.Redis
) -> None:
    envelopes = [envelope(f"r-{n:04d}") for n in range(2000)]

    async def enqueue_all(enqueuer: RedisEnqueuer) -> None:
        await asyncio.gather(*(enqueuer.enqueue(e) for e in envelopes))

    # A generous deadline: this is about order, not about time.
    run(enqueue_all, redis_url, namespace, deadline=10.0)

    ids = client.lrange(f"{namespace}:{QUEUE}", 0, -1)
    assert [i.decode() for i in ids] == [e.redis_message_id for e in envelopes]


def test_receipts_waiting_for_one_flush_land_as_one_message_carrying_them_all(
    redis_url: str, namespace: str, client: redis.Redis
) -> None:
    # Given fifty receipts submitted before the flusher runs
    receipts = [receipt(f"r-{n:02d}") for n in range(50)]

    async def enqueue_all(enqueuer: RedisEnqueuer) -> None:
        await asyncio.gather(
            *(
                enqueuer.enqueue_receipt(r.encode(), queue_name=QUEUE, actor_name=ACTOR)
                for r in receipts
            )
        )

    # When they are enqueued
    run(enqueue_all, redis_url, namespace, deadline=10.0)

    # Then one Dramatiq message carries them all, in submission order, as a JSON array
    [raw] = client.hvals(f"{namespace}:{QUEUE}.msgs")
    message = dramatiq.Message.decode(raw)
    assert (message.queue_name, message.actor_name) == (QUEUE, ACTOR)
    assert msgspec.json.decode(message.args[0], type=list[Receipt]) == receipts


def test_a_redis_that_forgot_the_script_gets_it_again(
    redis_url: str, namespace: str, client: redis.Redis
) -> None:
    async def twice(enqueuer: RedisEnqueuer) -> None:
        await enqueuer.enqueue(envelope("r-1"))
        client.script_flush()
        await enqueuer.enqueue(envelope("r-2"))

    run(twice, redis_url, namespace)

    assert client.llen(f"{namespace}:{QUEUE}") == 2


def test_an_unreachable_redis_fails_within_the_deadline() -> None:
    async def attempt(enqueuer: RedisEnqueuer) -> tuple[bool, list[bool]]:
        try:
            await enqueuer.enqueue(envelope("r-1"))
        except EnqueueFailed:
            failed = True
        else:
            failed = False
        return failed, await enqueuer.enqueue_many([envelope("r-2")])

    failed, results = run(attempt, closed_redis_url(), "qlara-test-nowhere")

    assert failed
    assert results == [False]


def test_ping_says_whether_redis_answers(redis_url: str) -> None:
    assert run(lambda e: e.ping(), redis_url, "qlara-test-ping")
    assert not run(lambda e: e.ping(), closed_redis_url(), "qlara-test-ping")


def test_callers_give_up_at_their_deadline_when_redis_hangs() -> None:
    # Given a "Redis" that accepts connections and never answers, with socket operations
    # allowed far longer than a caller's deadline
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    url = f"redis://127.0.0.1:{listener.getsockname()[1]}/0"

    async def attempt(enqueuer: RedisEnqueuer) -> list[BaseException | None]:
        async def one(n: int) -> None:
            await enqueuer.enqueue_receipt(b"{}", queue_name=QUEUE, actor_name=ACTOR)

        return await asyncio.gather(*(one(n) for n in range(3)), return_exceptions=True)

    # When callers enqueue (the first flush hangs, the others wait behind it)
    try:
        outcomes = run(attempt, url, "qlara-test-hang", timeout=30.0, deadline=0.3)
    finally:
        listener.close()

    # Then each failed at its own deadline, not at the socket timeout
    assert [str(o) for o in outcomes] == ["deadline passed"] * 3
    assert all(isinstance(o, EnqueueFailed) for o in outcomes)


def test_a_caller_costs_no_running_loop_lookup(redis_url: str, namespace: str) -> None:
    # On Python 3.11 each asyncio.get_running_loop() is a getpid() system call; a caller's
    # path (future, deadline) makes none, only each flush's Redis client does.
    lookups = 0

    def profile(frame: Any, event: str, arg: Any) -> None:
        nonlocal lookups
        if event == "c_call" and arg is asyncio.get_running_loop:
            lookups += 1

    async def callers(enqueuer: RedisEnqueuer) -> None:
        await enqueuer.enqueue_receipt(b"{}", queue_name=QUEUE, actor_name=ACTOR)  # warm-up
        sys.setprofile(profile)
        try:
            await asyncio.gather(
                *(
                    enqueuer.enqueue_receipt(b"{}", queue_name=QUEUE, actor_name=ACTOR)
                    for _ in range(200)
                )
            )
        finally:
            sys.setprofile(None)

    run(callers, redis_url, namespace, deadline=10.0)

    assert lookups < 50, lookups


def test_a_flush_waits_one_loop_pass_for_more_receipts(
    redis_url: str, namespace: str, client: redis.Redis
) -> None:
    # A receipt submitted one event-loop pass after another still rides in the same
    # message: fewer, larger queue messages for the workers
    async def two(enqueuer: RedisEnqueuer) -> None:
        async def later() -> None:
            await asyncio.sleep(0)
            await enqueuer.enqueue_receipt(b'{"n":2}', queue_name=QUEUE, actor_name=ACTOR)

        await asyncio.gather(
            enqueuer.enqueue_receipt(b'{"n":1}', queue_name=QUEUE, actor_name=ACTOR), later()
        )

    run(two, redis_url, namespace)

    assert client.llen(f"{namespace}:{QUEUE}") == 1
