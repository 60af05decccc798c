"""The spool: durable lines, torn tails skipped, locks respected, drains resumable."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import time
from pathlib import Path

import pytest

from qlara import Receipt
from receiver.drain import SpoolDrainer
from receiver.enqueue import Envelope, RedisEnqueuer, build_message
from receiver.spool import Spool, encode_line, parse_segment
from tests.receiver.conftest import ACTOR, QUEUE, QueueReader, closed_redis_url


def message(receipt_id: str) -> bytes:
    receipt = Receipt(receipt_id=receipt_id, received_at=time.time())
    return Envelope.of(build_message(receipt, queue_name=QUEUE, actor_name=ACTOR)).data


def pending(spool: Spool) -> list[bytes]:
    return [line.data for path in spool.segments() for line in parse_segment(path.read_bytes())[0]]


def test_appended_lines_read_back_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")

    for n in range(3):
        spool.append(f"message-{n}".encode())

    assert pending(spool) == [b"message-0", b"message-1", b"message-2"]
    assert spool.size().events == 3


def test_concurrent_appends_are_all_durable_and_whole(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    payloads = [b"message-%04d" % n for n in range(400)]

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(spool.append, payloads))
    spool.seal()

    assert sorted(pending(spool)) == payloads
    assert parse_segment(spool.segments()[0].read_bytes())[1] == 0


def test_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    # Given a segment whose last write was cut short by a crash
    spool = Spool(tmp_path / "spool")
    spool.append(b"whole")
    spool.seal()
    [path] = spool.segments()
    with path.open("ab") as f:
        f.write(encode_line(b"torn-in-half")[:9])

    # Then only the whole line is read
    assert pending(spool) == [b"whole"]


def test_a_line_whose_checksum_fails_is_skipped(tmp_path: Path) -> None:
    buf = encode_line(b"good") + encode_line(b"flipped").replace(b"flipped", b"flopped")

    lines, bad = parse_segment(buf)

    assert [line.data for line in lines] == [b"good"]
    assert bad == 1


def test_a_message_with_a_newline_cannot_be_spooled(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="newline"):
        Spool(tmp_path / "spool").append(b"two\nlines")


def test_each_process_segment_sorts_after_the_one_before(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    names = []
    for n in range(3):
        spool.append(b"x%d" % n)
        names.append(spool.segments()[-1].name)
        spool.seal()

    assert names == sorted(names)
    assert len(set(names)) == 3
    assert pending(spool) == [b"x0", b"x1", b"x2"]


def test_the_segment_being_written_cannot_be_taken_for_draining(tmp_path: Path) -> None:
    writer = Spool(tmp_path / "spool")
    writer.append(b"in progress")
    drainer_view = Spool(tmp_path / "spool")
    [path] = drainer_view.segments()

    assert drainer_view.lock_segment(path) is None
    writer.seal()
    segment = drainer_view.lock_segment(path)
    assert segment is not None
    segment.close()


def test_a_path_that_is_a_file_makes_appending_fail(tmp_path: Path) -> None:
    (tmp_path / "spool").write_bytes(b"")

    with pytest.raises(FileExistsError):
        Spool(tmp_path / "spool").append(b"x")
    assert Spool(tmp_path / "spool").segments() == []


def test_lines_marked_done_are_not_pending_any_more(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    for n in range(3):
        spool.append(b"m%d" % n)
    spool.seal()
    [path] = spool.segments()
    segment = spool.lock_segment(path)
    assert segment is not None
    lines = segment.read_pending()

    segment.mark_done(lines[:2])
    segment.close()

    assert pending(spool) == [b"m2"]


def test_stale_temporary_segments_are_cleaned_up(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    directory.mkdir()
    stale = directory / ".123-1-000000.spool.tmp"
    stale.write_bytes(b"")
    os.utime(stale, (0, 0))

    assert Spool(directory).segments() == []
    assert not stale.exists()


# Draining


def drain(spool: Spool, url: str, namespace: str) -> int:
    async def main() -> int:
        enqueuer = RedisEnqueuer(url, namespace, timeout=5.0, deadline=10.0)
        try:
            return await SpoolDrainer(spool, enqueuer, interval=60).drain_once()
        finally:
            await enqueuer.aclose()

    return asyncio.run(main())


@pytest.mark.redis
def test_draining_moves_every_segment_in_order_then_deletes_them(
    tmp_path: Path, redis_url: str, namespace: str
) -> None:
    spool = Spool(tmp_path / "spool")
    for n in range(5):
        spool.append(message(f"r-{n}"))
        if n == 2:
            spool.seal()

    moved = drain(spool, redis_url, namespace)

    assert moved == 5
    queue = QueueReader(redis_url, namespace)
    assert [r.receipt_id for r in queue.receipts()] == [f"r-{n}" for n in range(5)]
    assert spool.segments() == []
    queue.client.close()


@pytest.mark.redis
def test_a_failed_drain_keeps_the_segment_and_a_later_one_sends_each_line_once(
    tmp_path: Path, redis_url: str, namespace: str
) -> None:
    # Given a sealed segment of three messages, the first already enqueued by a drain that
    # stopped half-way
    spool = Spool(tmp_path / "spool")
    for n in range(3):
        spool.append(message(f"r-{n}"))
    spool.seal()
    [path] = spool.segments()
    segment = spool.lock_segment(path)
    assert segment is not None
    first = segment.read_pending()[0]
    segment.close()
    assert drain(spool, closed_redis_url(), namespace) == 0
    assert spool.segments() == [path]
    segment = spool.lock_segment(path)
    assert segment is not None
    segment.mark_done([first])
    segment.close()

    # When Redis is reachable again
    moved = drain(spool, redis_url, namespace)

    # Then the two remaining lines are enqueued, and the segment is gone
    assert moved == 2
    queue = QueueReader(redis_url, namespace)
    assert [r.receipt_id for r in queue.receipts()] == ["r-1", "r-2"]
    assert spool.segments() == []
    queue.client.close()


@pytest.mark.redis
def test_a_line_that_is_not_a_message_does_not_block_the_segment(
    tmp_path: Path, redis_url: str, namespace: str
) -> None:
    spool = Spool(tmp_path / "spool")
    spool.append(b"not a dramatiq message")
    spool.append(message("r-1"))

    moved = drain(spool, redis_url, namespace)

    assert moved == 1
    assert spool.segments() == []


def test_size_counts_only_waiting_lines(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    spool.append(b"a")
    spool.append(b"b")

    size = spool.size()

    assert size.events == 2
    assert size.bytes == sum(p.stat().st_size for p in spool.segments())


def test_an_empty_spool_has_no_size(tmp_path: Path) -> None:
    assert Spool(tmp_path / "nothing-yet").size().events == 0
