"""The receipts' wire format: what the receiver (or a redrive) puts on the Dramatiq queue,
and what the workers' actor reads back.

A message goes to the actor :data:`ACTOR_NAME` on the queue :data:`QUEUE_NAME`, and its one
argument is text, either:

- one receipt's JSON object (:meth:`qlara.Receipt.encode`): what the receiver spools when
  Redis is away, what a redrive sends again, what receivers older than batching sent; or
- a JSON array of receipts' JSON objects: what the receiver sends for the receipts that
  wait for the same flush (:func:`join_argument`, an array even of one receipt), and what
  a dead letter keeps of the receipts the ledger refused (:func:`encode_argument`).

The receiver and the workers are upgraded one at a time, and messages wait in Redis across
an upgrade, so these bytes do not change: a worker must read whatever an older receiver
left in the queue. Both sides build and read the argument here, and nowhere else.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from qlara.events import Receipt

#: The Redis queue receipts travel on, from the receiver (or a redrive) to the workers.
QUEUE_NAME = "qlara-events"
#: The actor every receipt message is addressed to.
ACTOR_NAME = "record_receipt"

_ARGUMENT = msgspec.json.Decoder(Receipt | list[Receipt])


def encode_argument(receipts: Sequence[Receipt]) -> str:
    """The argument of a message carrying ``receipts``: one receipt's JSON object, or the
    JSON array of several."""
    if len(receipts) == 1:
        return receipts[0].encode().decode()
    return join_argument([receipt.encode() for receipt in receipts])


def join_argument(encoded: Sequence[bytes]) -> str:
    """The argument of a message carrying receipts already encoded
    (:meth:`qlara.Receipt.encode`): their JSON array, even of one.

    The receiver encodes each receipt once, when it accepts the request, and only joins
    the bytes when it sends them: no receipt is decoded or encoded again on the way.
    """
    return (b"[" + b",".join(encoded) + b"]").decode()


def decode_argument(argument: str | bytes) -> list[Receipt]:
    """The receipts of a message's argument, in order (one for a JSON object).

    Raises ``msgspec.DecodeError`` (``msgspec.ValidationError`` for a wrong shape) for
    anything else; its message names where the argument is wrong, never what it holds.
    """
    decoded = _ARGUMENT.decode(argument)
    return decoded if isinstance(decoded, list) else [decoded]
