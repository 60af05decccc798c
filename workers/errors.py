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
    """The ledger refused the receipt for a reason that is not its own unavailability."""
