"""Dramatiq workers: the broker set-up, the ``record_receipt`` actor, the middleware that
decides what happens to a message that fails, the worker process runner, and redrive.

This is the only package that touches Dramatiq's globals (the global broker, actor
registration). Library code here takes a :class:`WorkerConfig`; nothing reads the
environment.
"""

from workers.broker import build_broker, enqueue_receipt
from workers.config import ACTOR_NAME, DEFAULT_NAMESPACE, QUEUE_NAME, WorkerConfig
from workers.connection import LedgerConnection
from workers.dead_letters import DeadLetters
from workers.delivery_limit import DeliveryLimit
from workers.errors import PermanentFailure, RejectedByLedger, UndecodableReceipt
from workers.recorder import RecordedHook
from workers.redrive import RedriveResult, redrive
from workers.retention import Retention
from workers.runner import EXIT_BOOT_FAILED, EXIT_OK, run_worker

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
