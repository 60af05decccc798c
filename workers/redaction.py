"""Receipt payloads hold phone numbers; Dramatiq's own log lines print messages with their
arguments. A filter on those loggers replaces each message by its actor and id."""

from __future__ import annotations

import logging
from typing import Any

from dramatiq import Message
from dramatiq.broker import MessageProxy
from dramatiq.common import dq_name

from qlara.wire import ACTOR_NAME, QUEUE_NAME


class RedactPayloads(logging.Filter):
    """Rewrites a log record's arguments: a Dramatiq message becomes
    ``record_receipt(message_id=...)``, and the argument tuple or dict an actor logs on each
    call becomes ``<redacted>``. Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_redact(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: _redact(value) for key, value in record.args.items()}
        return True


def _redact(arg: Any) -> Any:
    if isinstance(arg, Message | MessageProxy):
        return f"{arg.actor_name}(message_id={arg.message_id})"
    if isinstance(arg, tuple | dict):
        return "<redacted>"
    return arg


def dramatiq_loggers(actor_module: str) -> list[logging.Logger]:
    """The loggers whose lines can carry a receipt payload: the worker and consumer threads
    (``Failed to process message <message>``) and the actor (``Received args=...``)."""
    names = [
        "dramatiq.worker.WorkerThread",
        f"dramatiq.worker.ConsumerThread({QUEUE_NAME})",
        f"dramatiq.worker.ConsumerThread({dq_name(QUEUE_NAME)})",
        f"{actor_module}.{ACTOR_NAME}",
    ]
    return [logging.getLogger(name) for name in names]


def redact_dramatiq_logs(actor_module: str) -> None:
    """Install :class:`RedactPayloads` on :func:`dramatiq_loggers` (once each)."""
    for logger in dramatiq_loggers(actor_module):
        if not any(isinstance(f, RedactPayloads) for f in logger.filters):
            logger.addFilter(RedactPayloads())
