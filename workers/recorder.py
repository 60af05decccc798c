"""What the ``record_receipt`` actor does with one message: one receipt or a batch."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import msgspec
import structlog

from ledger import LedgerError, LedgerUnavailable, RecordResult
from qlara import Receipt
from workers.connection import LedgerConnection
from workers.errors import RejectedByLedger, UndecodableReceipt

log = structlog.get_logger(__name__)

#: Called after each receipt is recorded, with what the ledger made of it. A hook must not
#: raise; if it does, the error is logged and the receipt still counts as recorded.
RecordedHook = Callable[[Receipt, RecordResult], None]


class ReceiptRecorder:
    """Decodes a message payload and records its receipts in the process's ledger.

    A payload is one receipt's JSON object (spool lines, redriven dead letters, messages of
    older receivers) or a JSON array of receipts (what the receiver enqueues), recorded in one
    ledger transaction. Raises :class:`~workers.errors.UndecodableReceipt` for a payload that
    is neither and :class:`~workers.errors.RejectedByLedger` when the ledger refuses it (both
    permanent); ``ledger.LedgerUnavailable`` passes through as transient. Recording is
    idempotent per receipt id, so a redelivered or retried message is harmless.
    """

    def __init__(self, connection: LedgerConnection, hooks: Iterable[RecordedHook] = ()) -> None:
        self._connection = connection
        #: Callbacks run after every successful record, once per receipt (the one place
        #: counting hooks in).
        self.on_recorded: list[RecordedHook] = list(hooks)

    def __call__(self, payload: object) -> list[RecordResult]:
        """Record the payload's receipts; their results, in payload order."""
        batch = decode_receipts(payload)
        try:
            results = self._connection.ledger.record_many(batch)
        except LedgerUnavailable:
            raise
        except LedgerError as exc:
            raise RejectedByLedger(f"{type(exc).__name__}: {first_line(exc)}") from exc
        for receipt, result in zip(batch, results, strict=True):
            log.debug(
                "receipt recorded",
                receipt_id=receipt.receipt_id,
                events=len(receipt.events),
                inbound=len(receipt.inbound),
                already_recorded=result.already_recorded,
                new_events=len(result.new_events),
                duplicate_events=len(result.duplicate_events),
                new_inbound=result.new_inbound,
                duplicate_inbound=result.duplicate_inbound,
            )
            for hook in self.on_recorded:
                try:
                    hook(receipt, result)
                except Exception:
                    log.exception("on_recorded hook failed", receipt_id=receipt.receipt_id)
        return results


_PAYLOAD = msgspec.json.Decoder(Receipt | list[Receipt])


def decode_receipts(payload: object) -> list[Receipt]:
    """The receipts of a message payload (one receipt's JSON, or a JSON array of receipts);
    raise UndecodableReceipt if it is neither."""
    if not isinstance(payload, str | bytes):
        raise UndecodableReceipt(f"expected a JSON string, got {type(payload).__name__}")
    try:
        decoded = _PAYLOAD.decode(payload)
    except msgspec.DecodeError as exc:
        # msgspec names the path and the expected type, never the offending value.
        raise UndecodableReceipt(first_line(exc)) from exc
    return decoded if isinstance(decoded, list) else [decoded]


def first_line(exc: BaseException, *, limit: int = 300) -> str:
    """The first line of an exception's message, cut to ``limit`` characters.

    Database drivers put the statement and its parameters (which may hold phone numbers) on
    the following lines; only the first line is ever stored or logged.
    """
    text = str(exc).strip().splitlines()
    line = text[0] if text else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"
