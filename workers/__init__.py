"""Dramatiq workers: the broker set-up, the ``record_receipt`` actor, the middleware that
decides what happens to a message that fails, the worker process runner, and redrive.

This is the only package that touches Dramatiq's globals (the global broker, actor
registration). Library code here takes a :class:`WorkerConfig`; nothing reads the
environment.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qlara.wire import ACTOR_NAME, QUEUE_NAME
    from workers.broker import build_broker, enqueue_receipt
    from workers.config import DEFAULT_NAMESPACE, WorkerConfig
    from workers.connection import LedgerConnection
    from workers.dead_letters import DeadLetters
    from workers.delivery_limit import DeliveryLimit
    from workers.errors import PermanentFailure, RejectedByLedger, UndecodableReceipt
    from workers.recorder import RecordedHook
    from workers.redriving import RedriveResult, redrive
    from workers.retention import Retention
    from workers.runner import EXIT_BOOT_FAILED, EXIT_OK, run_worker

#: Where each name lives; imported on first use (PEP 562), so that the queue's names
#: (`qlara.wire`'s) and `workers.config`'s come without Dramatiq, the ledger and the rest of
#: this package (21 MiB).
_WHERE = {
    "ACTOR_NAME": "qlara.wire",
    "DEFAULT_NAMESPACE": "workers.config",
    "DeadLetters": "workers.dead_letters",
    "DeliveryLimit": "workers.delivery_limit",
    "EXIT_BOOT_FAILED": "workers.runner",
    "EXIT_OK": "workers.runner",
    "LedgerConnection": "workers.connection",
    "PermanentFailure": "workers.errors",
    "QUEUE_NAME": "qlara.wire",
    "RecordedHook": "workers.recorder",
    "RedriveResult": "workers.redriving",
    "RejectedByLedger": "workers.errors",
    "Retention": "workers.retention",
    "UndecodableReceipt": "workers.errors",
    "WorkerConfig": "workers.config",
    "build_broker": "workers.broker",
    "enqueue_receipt": "workers.broker",
    "redrive": "workers.redriving",
    "run_worker": "workers.runner",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'workers' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


__all__ = [
    "ACTOR_NAME",
    "DEFAULT_NAMESPACE",
    "EXIT_BOOT_FAILED",
    "EXIT_OK",
    "QUEUE_NAME",
    "DeadLetters",
    "DeliveryLimit",
    "LedgerConnection",
    "PermanentFailure",
    "RecordedHook",
    "RedriveResult",
    "RejectedByLedger",
    "Retention",
    "UndecodableReceipt",
    "WorkerConfig",
    "build_broker",
    "enqueue_receipt",
    "redrive",
    "run_worker",
]
