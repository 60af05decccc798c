"""A 200 means durable: Redis down, hung or unwritable spool, and what each answer becomes."""

from __future__ import annotations

import concurrent.futures
import json
import time
from typing import Any

import redis
from litestar.testing import TestClient

import qlara
from receiver import ReceiverConfig
from receiver.enqueue import Envelope, build_message
from receiver.spool import Spool
from tests.conftest import OwnRedis
from tests.receiver.conftest import (
    ACTOR,
    QUEUE,
    TOKEN,
    HungRedis,
    QueueReader,
    closed_redis_url,
    event_json,
    spool_lines,
    wait_for,
)

URL = f"/webhook/{TOKEN}"
#: The production deadline, tested against a Redis that never answers while the socket
#: timeout is a minute: an answer at all shows the deadline, not the socket, decided it.
DEADLINE = 0.5
NEVER = 60.0


def post_event(client: TestClient[Any], message_id: str) -> int:
    return int(client.post(URL, content=json.dumps(event_json(message_id))).status_code)


def test_events_posted_while_redis_is_down_reach_the_queue_in_order_after_restart(
    config: ReceiverConfig, make_client: Any, own_redis: OwnRedis
) -> None:
    # Given a receiver on a Redis of our own, and two events accepted while it is up
    client = make_client(config, redis_url=own_redis.url)
    queue = QueueReader(own_redis.url, config.namespace)
    assert [post_event(client, f"up-{n}") for n in range(2)] == [200, 200]

    # When Redis is killed and five more events are posted
    own_redis.kill()
    down = [post_event(client, f"down-{n}") for n in range(5)]

    # Then each is answered 200 from the spool
    assert down == [200] * 5
    assert client.app.state.outcomes["spooled"] == 5
    assert len(spool_lines(config)) == 5

    # And once Redis is back, the drainer moves them to the queue, in order
    own_redis.start()
    wait_for(lambda: not spool_lines(config), what="the spool to drain")
    wait_for(lambda: len(queue) == 7, what="seven queued messages")
    receipts = queue.receipts()
    assert [r.events[0].message_id for r in receipts] == [
        "up-0",
        "up-1",
        *(f"down-{n}" for n in range(5)),
    ]
    # exactly one message per 200
    assert len({r.receipt_id for r in receipts}) == 7
    assert list(config.spool_dir.glob("*.spool")) == []


def test_a_spooled_message_keeps_its_receipt_id_and_wire_format(
    config: ReceiverConfig, make_client: Any, own_redis: OwnRedis
) -> None:
    client = make_client(config, redis_url=own_redis.url)
    own_redis.kill()
    assert post_event(client, "m-1") == 200
    [line] = spool_lines(config)

    own_redis.start()
    queue = QueueReader(own_redis.url, config.namespace)
    wait_for(lambda: len(queue) == 1, what="the spooled message in the queue")

    [message] = queue.messages()
    assert line.endswith(message.encode())
    assert message.message_id == queue.receipts()[0].receipt_id


def test_a_hung_redis_still_gets_an_answer_by_the_deadline_not_the_socket_timeout(
    config: ReceiverConfig, make_client: Any, hung_redis: HungRedis
) -> None:
    client = make_client(
        config, redis_url=hung_redis.url, enqueue_deadline=DEADLINE, redis_timeout=NEVER
    )

    started = time.monotonic()
    status = post_event(client, "m-1")
    elapsed = time.monotonic() - started

    assert status == 200
    # Far below the socket timeout: only the deadline can have ended the wait.
    assert elapsed < NEVER / 2
    assert client.app.state.outcomes["spooled"] == 1
    assert len(spool_lines(config)) == 1


def test_concurrent_posts_to_a_hung_redis_are_all_spooled(
    config: ReceiverConfig, make_client: Any, hung_redis: HungRedis
) -> None:
    client = make_client(
        config, redis_url=hung_redis.url, enqueue_deadline=DEADLINE, redis_timeout=NEVER
    )

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda n: post_event(client, f"m-{n}"), range(16)))

    assert statuses == [200] * 16
    assert len(spool_lines(config)) == 16


def test_with_redis_down_and_the_spool_unwritable_the_answer_is_a_503(
    config: ReceiverConfig, make_client: Any
) -> None:
    # Given no Redis, and the spool directory's path taken by a regular file
    config.data_dir.mkdir(parents=True)
    config.spool_dir.write_bytes(b"not a directory")
    client = make_client(config, redis_url=closed_redis_url())

    response = client.post(URL, content=json.dumps(event_json()))

    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["status"] == "unavailable"
    assert client.app.state.outcomes["unavailable"] == 1


def test_a_full_redis_sends_events_to_the_spool(
    config: ReceiverConfig, make_client: Any, own_redis: OwnRedis
) -> None:
    # Given a Redis that refuses writes (out of memory)
    admin = redis.Redis.from_url(own_redis.url)
    admin.config_set("maxmemory", 1)
    admin.config_set("maxmemory-policy", "noeviction")
    client = make_client(config, redis_url=own_redis.url)

    # When an event is posted, it is kept in the spool
    assert post_event(client, "m-1") == 200
    assert client.app.state.outcomes["spooled"] == 1

    # And when memory is freed, it reaches the queue
    admin.config_set("maxmemory", 0)
    queue = QueueReader(own_redis.url, config.namespace)
    wait_for(lambda: len(queue) == 1, what="the spooled message in the queue")
    wait_for(lambda: not spool_lines(config), what="the spool to drain")
    admin.close()


def test_a_segment_left_by_a_dead_process_is_drained(
    config: ReceiverConfig, make_client: Any, queue: QueueReader
) -> None:
    # Given a segment written by another process that stopped without draining it
    other = Spool(config.spool_dir)
    receipt = qlara.Receipt(receipt_id="r-left-behind", received_at=time.time())
    other.append(Envelope.of(build_message(receipt, queue_name=QUEUE, actor_name=ACTOR)).data)
    other.seal()

    # When a receiver starts
    make_client(config)

    # Then it drains that segment too
    wait_for(lambda: len(queue) == 1, what="the left-behind message in the queue")
    assert queue.receipts()[0].receipt_id == "r-left-behind"
