"""What the ``record_receipt`` actor does with one message: one receipt or a batch."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import msgspec
import structlog

from ledger import Ledger, LedgerError, LedgerUnavailable, RecordResult, Tally
from qlara import Receipt
from qlara.wire import decode_argument, encode_argument
from workers.connection import LedgerConnection
from workers.errors import RejectedByLedger, UndecodableReceipt

log = structlog.get_logger(__name__)
_stdlib_log = logging.getLogger(__name__)

#: Called after each receipt is recorded, with what the ledger made of it. A hook must not
#: raise; if it does, the error is logged and the receipt still counts as recorded.
RecordedHook = Callable[[Receipt, RecordResult], None]


#: Receipts one group transaction takes at most (a message is never split: one larger than
#: this is recorded alone).
MAX_GROUP_RECEIPTS = 1000


class ReceiptRecorder:
    """Decodes a message payload and records its receipts in the process's ledger.

    A payload is one receipt's JSON object (spool lines, redriven dead letters, messages of
    older receivers) or a JSON array of receipts (what the receiver enqueues). The receipts of
    the messages the process's worker threads are handling at the same moment are recorded
    together, in one ledger transaction (:class:`GroupCommit`).

    Raises :class:`~workers.errors.UndecodableReceipt` for a payload that is neither and
    :class:`~workers.errors.RejectedByLedger` when the ledger refuses some of its receipts
    (both permanent; the other receipts of the message are recorded, and the exception carries
    only the refused ones). ``ledger.LedgerUnavailable`` and unexpected errors pass through as
    transient. Recording is idempotent per receipt id, so a redelivered or retried message is
    harmless. With ``tally``, each transaction also adds what it counts to the ledger-kept
    counters (``ledger.Tally``), in that transaction.
    """

    def __init__(
        self,
        connection: LedgerConnection,
        hooks: Iterable[RecordedHook] = (),
        *,
        tally: Tally | None = None,
        max_group_receipts: int = MAX_GROUP_RECEIPTS,
    ) -> None:
        self._group = GroupCommit(
            lambda: connection.ledger, max_receipts=max_group_receipts, tally=tally
        )
        #: Callbacks run after every successful record, once per receipt (the one place
        #: counting hooks in).
        self.on_recorded: list[RecordedHook] = list(hooks)

    def __call__(self, payload: object) -> list[RecordResult]:
        """Record the payload's receipts; the results of those recorded, in payload order."""
        batch = decode_receipts(payload)
        outcome = self._group.record(batch)
        recorded: list[RecordResult] = []
        # Asked once per message: a structlog call costs microseconds even when filtered out.
        debug = _stdlib_log.isEnabledFor(logging.DEBUG)
        for receipt, result in zip(batch, outcome.results, strict=True):
            if result is None:
                continue
            recorded.append(result)
            if debug:
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
        if outcome.error is not None:
            raise outcome.error
        if outcome.refused:
            refused = [batch[index] for index, _ in outcome.refused]
            exc = outcome.refused[0][1]
            raise RejectedByLedger(
                f"{type(exc).__name__}: {first_line(exc)}",
                payload=encode_argument(refused),
                refused=len(refused),
                of=len(batch),
            ) from exc
        return recorded


@dataclass(slots=True)
class GroupOutcome:
    """What became of one caller's receipts in a group commit.

    ``results`` has one entry per receipt, ``None`` for one the ledger refused; ``refused``
    lists those as (position, the ledger's error). ``error`` is a failure of the whole call
    that retrying may cure (``LedgerUnavailable``, or anything unexpected): then nothing
    else is set and none of the receipts is known to be recorded.
    """

    results: list[RecordResult | None]
    refused: list[tuple[int, LedgerError]] = field(default_factory=list)
    error: Exception | None = None


@dataclass(eq=False, slots=True)
class _Call:
    receipts: Sequence[Receipt]
    outcome: GroupOutcome | None = None


class GroupCommit:
    """Records the receipts of concurrent callers (a worker process's threads) in one ledger
    transaction, so that the price of a commit (an fsync, a round trip, the statements'
    fixed cost) is paid once for many messages.

    A caller's receipts are added to the pending list; then it waits for the commit lock.
    Whoever holds it takes every pending call (up to ``max_receipts`` receipts, always at
    least one call) and records them with ``Ledger.record_many``; a caller whose call was
    taken by another finds its outcome set when it gets the lock. So while one transaction
    runs, the next one's group gathers, and a lone caller is recorded at once, without
    waiting for company.

    ``record_many`` is all or nothing. When a group fails with anything but
    ``LedgerUnavailable`` (a refusal that may concern one receipt only), each call is
    recorded again on its own, and a call that still fails has its receipts recorded one by
    one: only what the ledger refuses by itself is refused.
    """

    def __init__(
        self,
        ledger: Callable[[], Ledger],
        *,
        max_receipts: int = MAX_GROUP_RECEIPTS,
        tally: Tally | None = None,
    ):
        if max_receipts < 1:
            raise ValueError("max_receipts must be at least 1")
        self._ledger = ledger
        self._tally = tally
        self._max_receipts = max_receipts
        self._pending: deque[_Call] = deque()
        self._pending_lock = threading.Lock()
        self._commit_lock = threading.Lock()

    def record(self, receipts: Sequence[Receipt]) -> GroupOutcome:
        """Record ``receipts`` (with whatever else is pending); what became of each."""
        if not receipts:
            return GroupOutcome(results=[])
        call = _Call(receipts)
        with self._pending_lock:
            self._pending.append(call)
        while call.outcome is None:
            with self._commit_lock:
                if call.outcome is None:
                    self._commit(self._take())
        return call.outcome

    def _take(self) -> list[_Call]:
        group: list[_Call] = []
        size = 0
        with self._pending_lock:
            while self._pending:
                n = len(self._pending[0].receipts)
                if group and size + n > self._max_receipts:
                    break
                group.append(self._pending.popleft())
                size += n
        return group

    def _commit(self, group: list[_Call]) -> None:
        # Whatever happens, even an interrupt raised in this thread (Dramatiq's time limit,
        # shutdown), every call of the group gets an outcome: its caller may be waiting.
        try:
            self._commit_group(group)
        finally:
            for call in group:
                if call.outcome is None:
                    call.outcome = GroupOutcome(
                        results=[None] * len(call.receipts),
                        error=LedgerUnavailable("the transaction was interrupted; retry"),
                    )

    def _commit_group(self, group: list[_Call]) -> None:
        if not group:
            return
        try:
            results = self._record_many([r for call in group for r in call.receipts])
        except LedgerUnavailable as exc:
            for call in group:
                call.outcome = GroupOutcome(results=[None] * len(call.receipts), error=exc)
            return
        except Exception:
            if len(group) == 1:
                group[0].outcome = self._one_by_one(group[0].receipts)
            else:
                log.info(
                    "group transaction refused; recording its messages one by one",
                    calls=len(group),
                )
                for call in group:
                    self._commit([call])
            return
        start = 0
        for call in group:
            end = start + len(call.receipts)
            call.outcome = GroupOutcome(results=list(results[start:end]))
            start = end

    def _one_by_one(self, receipts: Sequence[Receipt]) -> GroupOutcome:
        """Record each receipt alone: the ledger's refusals become per-receipt ones."""
        outcome = GroupOutcome(results=[])
        for index, receipt in enumerate(receipts):
            try:
                [result] = self._record_many([receipt])
            except LedgerUnavailable as exc:
                return GroupOutcome(results=[None] * len(receipts), error=exc)
            except LedgerError as exc:
                outcome.results.append(None)
                outcome.refused.append((index, exc))
                continue
            except Exception as exc:
                return GroupOutcome(results=[None] * len(receipts), error=exc)
            outcome.results.append(result)
        return outcome

    def _record_many(self, receipts: Sequence[Receipt]) -> list[RecordResult]:
        return self._ledger().record_many(receipts, tally=self._tally)


def decode_receipts(payload: object) -> list[Receipt]:
    """The receipts of a message payload (one receipt's JSON, or a JSON array of receipts:
    :mod:`qlara.wire`); raise UndecodableReceipt if it is neither."""
    if not isinstance(payload, str | bytes):
        raise UndecodableReceipt(f"expected a JSON string, got {type(payload).__name__}")
    try:
        return decode_argument(payload)
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
