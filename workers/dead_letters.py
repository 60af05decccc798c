"""Messages that will not succeed end in the ledger's dead-letter table, with their reason."""

from __future__ import annotations

import json
from typing import Any

import structlog
from dramatiq import Broker, Middleware
from dramatiq.broker import MessageProxy

import metrics
from workers.connection import LedgerConnection
from workers.errors import PermanentFailure, RejectedByLedger, UndecodableReceipt
from workers.recorder import first_line

log = structlog.get_logger(__name__)


def failure_reason(exc: BaseException) -> str:
    """``<ExceptionClass>: <first line of its message>``: no value from the payload."""
    return f"{type(exc).__name__}: {first_line(exc)}"


def dead_letter_reason(exception: BaseException, *, permanent: bool) -> metrics.DeadLetterReason:
    """The ``reason`` label of ``qlara_dead_letters_total`` for a message that failed with
    ``exception`` (``permanent``: declared through the actor's ``throws``)."""
    if isinstance(exception, UndecodableReceipt):
        return "undecodable"
    if isinstance(exception, RejectedByLedger):
        return "rejected"
    if permanent or isinstance(exception, PermanentFailure):
        return "permanent"
    return "retries_exhausted"


def message_payload(message: MessageProxy) -> str:
    """The payload as it was sent: the receipt JSON, or the arguments as JSON if they are not
    one string (a message that does not follow the wire format is kept as it came)."""
    args = message.args
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return json.dumps({"args": list(args), "kwargs": message.kwargs}, default=repr)


def bury(
    broker: Broker,
    message: MessageProxy,
    *,
    connection: LedgerConnection,
    reason: str,
    kind: metrics.DeadLetterReason,
    attempts: int,
    park_ms: int,
    payload: str | None = None,
) -> bool:
    """Write ``message`` (or, when given, ``payload`` in its name: the part of the message
    that failed) to the dead-letter table; return whether it was written.

    A written dead letter is counted in ``qlara_dead_letters_total{reason=kind}`` (``reason``
    is the text stored with it, which no label carries).

    When the ledger cannot take it (it may well be what the message failed on), the message
    is parked instead of dropped: a copy is enqueued again after ``park_ms`` and the original
    is acknowledged, so nothing is lost and the dead letter is tried again later.
    """
    try:
        connection.ledger.add_dead_letter(
            payload=payload if payload is not None else message_payload(message),
            reason=reason,
            attempts=attempts,
            receipt_id=message.message_id,
        )
    except Exception as exc:
        log.error(
            "dead letter not written, message parked",
            message_id=message.message_id,
            park_ms=park_ms,
            error=failure_reason(exc),
        )
        message.failed = False
        broker.enqueue(message.copy(), delay=park_ms)
        return False
    metrics.DEAD_LETTERS.labels(kind).inc()
    log.warning(
        "message dead-lettered",
        message_id=message.message_id,
        attempts=attempts,
        reason=reason,
    )
    return True


class DeadLetters(Middleware):
    """A message that failed for good (a permanent error, or its retries spent) is written to
    the ledger's dead-letter table with the exception's class and first line as reason.

    Must sit before :class:`dramatiq.middleware.Retries` in the broker's middleware list:
    ``after_`` hooks run in reverse order, so this one sees Retries' verdict
    (``message.failed``).
    """

    def __init__(self, connection: LedgerConnection, *, park_ms: int) -> None:
        self._connection = connection
        self._park_ms = park_ms

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if exception is None or not message.failed:
            return
        # Retries counts a retried failure in options["retries"] but not a declared
        # (permanent) one, which fails on the attempt that raised it.
        retries = int(message.options.get("retries", 0))
        actor = broker.get_actor(message.actor_name)
        throws = message.options.get("throws") or actor.options.get("throws")
        permanent = isinstance(exception, throws) if throws else False
        attempts = retries + 1 if permanent else retries
        # Only the receipts the ledger refused, when the others were recorded.
        part = exception.payload if isinstance(exception, RejectedByLedger) else None
        bury(
            broker,
            message,
            connection=self._connection,
            reason=failure_reason(exception),
            kind=dead_letter_reason(exception, permanent=permanent),
            attempts=max(attempts, 1),
            park_ms=self._park_ms,
            payload=part,
        )
