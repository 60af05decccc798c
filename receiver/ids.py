"""Receipt ids: unique across processes and restarts, cheap to make, in order per process.

A receipt id was ``uuid.uuid4().hex``: 16 bytes from ``os.urandom``, a ``getrandom`` system
call for every accepted request. :func:`next_receipt_id` gives the same shape (32 hex digits)
from a 64-bit random prefix, drawn once per process (and again in a forked child), and a
counter. Two processes share a prefix with probability 2**-64; within one process ids never
repeat and come in order, so the ledger's receipts index grows at its end rather than at
random places.
"""

from __future__ import annotations

import itertools
import os

_prefix = ""
_counter = itertools.count()


def _start() -> None:
    global _prefix, _counter
    _prefix = os.urandom(8).hex()
    _counter = itertools.count()


_start()
os.register_at_fork(after_in_child=_start)


def next_receipt_id() -> str:
    """A new receipt id: 32 lowercase hex digits, never the same twice."""
    return f"{_prefix}{next(_counter):016x}"
