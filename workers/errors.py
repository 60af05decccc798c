"""Failures the workers decide on. Retry or give up is decided here, once: a
:class:`PermanentFailure` is declared through the actor's ``throws=`` and goes to the
dead-letter table at once; anything else is treated as transient and retried with backoff."""

from __future__ import annotations


class PermanentFailure(Exception):
    """The message can never succeed as sent; retrying it would only repeat the failure."""


class UndecodableReceipt(PermanentFailure):
    """The message's payload is not a receipt (malformed JSON, wrong shape or wrong type).

    The message says where the payload is wrong, never what it holds.
    """


class RejectedByLedger(PermanentFailure):
    """The ledger refused receipts for a reason that is not its own unavailability.

    ``payload``, when set, is what to keep as the dead letter instead of the whole message:
    the refused receipts only (``refused`` of the message's ``of``), the others having been
    recorded.
    """

    def __init__(
        self, reason: str, *, payload: str | None = None, refused: int = 1, of: int = 1
    ) -> None:
        super().__init__(reason if of == 1 else f"{reason} ({refused} of {of} receipts)")
        self.payload = payload
        self.refused = refused
        self.of = of
