"""What the ``record_receipt`` actor does with one message."""

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
    """Decodes a receipt payload and records it in the process's ledger.

    Raises :class:`~workers.errors.UndecodableReceipt` for a payload that is not a receipt and
    :class:`~workers.errors.RejectedByLedger` when the ledger refuses it (both permanent);
    ``ledger.LedgerUnavailable`` passes through as transient. Recording is idempotent per
    receipt id, so a redelivered or retried message is harmless.
    """

    def __init__(self, connection: LedgerConnection, hooks: Iterable[RecordedHook] = ()) -> None:
        self._connection = connection
        #: Callbacks run after every successful record (the one place counting hooks in).
        self.on_recorded: list[RecordedHook] = list(hooks)

    def __call__(self, receipt_json: object) -> RecordResult:
        receipt = decode_receipt(receipt_json)
        try:
            result = self._connection.ledger.record(receipt)
        except LedgerUnavailable:
            raise
        except LedgerError as exc:
            raise RejectedByLedger(f"{type(exc).__name__}: {first_line(exc)}") from exc
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
        return result


def decode_receipt(receipt_json: object) -> Receipt:
    """Decode a message payload into a Receipt; raise UndecodableReceipt if it is not one."""
    if not isinstance(receipt_json, str | bytes):
        raise UndecodableReceipt(f"expected a JSON string, got {type(receipt_json).__name__}")
    try:
        return Receipt.decode(receipt_json)
    except msgspec.DecodeError as exc:
        # msgspec names the path and the expected type, never the offending value.
        raise UndecodableReceipt(first_line(exc)) from exc


def first_line(exc: BaseException, *, limit: int = 300) -> str:
    """The first line of an exception's message, cut to ``limit`` characters.

    Database drivers put the statement and its parameters (which may hold phone numbers) on
    the following lines; only the first line is ever stored or logged.
    """
    text = str(exc).strip().splitlines()
    line = text[0] if text else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"
