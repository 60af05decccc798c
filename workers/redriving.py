"""Dead letters are replayed through the queue once their cause is fixed."""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from workers.broker import assemble, receipt_message
from workers.config import WorkerConfig

log = structlog.get_logger(__name__)

#: Dead letters read from the ledger per round trip.
BATCH_SIZE = 500


@dataclass(frozen=True, slots=True)
class RedriveResult:
    """What one :func:`redrive` did: ``redriven`` dead letters were enqueued again and marked;
    ``remaining`` are still waiting (left by ``limit``, or written while it ran), counted up
    to :data:`BATCH_SIZE`: enough to tell whether another run is needed."""

    redriven: int
    remaining: int


def redrive(config: WorkerConfig, *, limit: int | None = None) -> RedriveResult:
    """Enqueue every dead letter not yet redriven (oldest first, at most ``limit``) again as a
    fresh message to the ``record_receipt`` actor, and mark it redriven.

    Each is marked after it is enqueued: a crash in between enqueues it twice on the next
    run, which is harmless because the ledger records each receipt id once. A redriven
    message that fails again becomes a new dead letter. Raises ``ledger.LedgerError`` /
    ``redis.RedisError`` when either store is unavailable; what was redriven so far stays so.
    """
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be 0 or more, got {limit!r}")
    assembly = assemble(config)
    broker, connection = assembly.broker, assembly.connection
    redriven = 0
    seen: set[int] = set()
    try:
        ledger = connection.open()
        while limit is None or redriven < limit:
            size = BATCH_SIZE if limit is None else min(BATCH_SIZE, limit - redriven)
            batch = [
                letter
                for letter in ledger.dead_letters(include_redriven=False, limit=size)
                if letter.id not in seen
            ]
            if not batch:
                break
            for letter in batch:  # the ledger lists them oldest first
                seen.add(letter.id)
                broker.enqueue(receipt_message(letter.payload, message_id=letter.receipt_id))
                ledger.mark_redriven(letter.id)
                redriven += 1
                log.info(
                    "dead letter redriven", dead_letter_id=letter.id, receipt_id=letter.receipt_id
                )
        remaining = len(ledger.dead_letters(include_redriven=False, limit=BATCH_SIZE))
    finally:
        connection.close()
        broker.client.close()
    log.info("redrive done", redriven=redriven, remaining=remaining)
    return RedriveResult(redriven=redriven, remaining=remaining)
