"""Moving spooled messages into Redis once it takes them again.

Each receiver process runs one :class:`SpoolDrainer` in the background. Every ``interval``
it seals its own segment, then drains every segment whose lock it can take, oldest first,
line by line in order, through the same enqueue the intake uses. A segment is deleted only
after all its lines are enqueued; the first failure ends the pass, and the next pass starts
again where this one stopped. A replayed message keeps its receipt id, and the ledger
records each receipt id once, so a crash between enqueue and delete records nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib

import dramatiq.errors
import structlog

from receiver.enqueue import Envelope, RedisEnqueuer
from receiver.spool import LockedSegment, Spool, SpoolLine

log = structlog.get_logger(__name__)

_CHUNK = 256


class SpoolDrainer:
    """Drains ``spool`` into Redis through ``enqueuer`` every ``interval`` seconds."""

    def __init__(self, spool: Spool, enqueuer: RedisEnqueuer, interval: float) -> None:
        self._spool = spool
        self._enqueuer = enqueuer
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start draining in the background on the running event loop."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="spool-drain")

    async def stop(self) -> None:
        """Stop draining and seal this process's segment so any process can drain it."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await asyncio.to_thread(self._spool.seal)

    async def drain_once(self) -> int:
        """One pass: seal, then drain what can be drained. Returns the messages enqueued."""
        await asyncio.to_thread(self._spool.seal)
        moved = 0
        for path in await asyncio.to_thread(self._spool.segments):
            segment = await asyncio.to_thread(self._spool.lock_segment, path)
            if segment is None:  # being written or drained by another process
                continue
            try:
                count, complete = await self._drain_segment(segment)
            finally:
                segment.close()
            moved += count
            if not complete:
                break
        if moved:
            log.info("spool_drained", messages=moved)
        return moved

    async def _drain_segment(self, segment: LockedSegment) -> tuple[int, bool]:
        lines = await asyncio.to_thread(segment.read_pending)
        moved = 0
        for start in range(0, len(lines), _CHUNK):
            chunk = lines[start : start + _CHUNK]
            sendable, unreadable = _envelopes(chunk)
            if unreadable:
                # Checksummed bytes that are not a Dramatiq message: nothing can consume
                # them, and keeping them would block the segment for ever.
                log.error("spool_line_unreadable", segment=segment.path.name, lines=len(unreadable))
            results = await self._enqueuer.enqueue_many([envelope for _, envelope in sendable])
            done = [line for (line, _), ok in zip(sendable, results, strict=True) if ok]
            await asyncio.to_thread(segment.mark_done, done + unreadable)
            moved += sum(results)
            if not all(results):
                log.warning("spool_drain_stopped", segment=segment.path.name, moved=moved)
                return moved, False
        await asyncio.to_thread(segment.remove)
        return moved, True

    async def _run(self) -> None:
        while True:
            try:
                await self.drain_once()
            except Exception as exc:  # a disk error must not end draining for good
                log.error("spool_drain_failed", error=type(exc).__name__)
            await asyncio.sleep(self._interval)


def _envelopes(
    lines: list[SpoolLine],
) -> tuple[list[tuple[SpoolLine, Envelope]], list[SpoolLine]]:
    sendable: list[tuple[SpoolLine, Envelope]] = []
    unreadable: list[SpoolLine] = []
    for line in lines:
        try:
            sendable.append((line, Envelope.decode(line.data)))
        except (dramatiq.errors.DecodeError, ValueError):
            unreadable.append(line)
    return sendable, unreadable
