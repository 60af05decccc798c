"""The receiver: the Litestar app that takes Qlara's webhook calls and serves the read API.

Each webhook request is checked (source, token, Basic, method, type, size, payload) and
answered 200 only once its events are durable: enqueued for the workers on Dramatiq's Redis
queue, or, while Redis cannot take them, fsync'd to a local spool that a background task
drains into Redis later. See :mod:`receiver.intake`, :mod:`receiver.enqueue` and
:mod:`receiver.spool`.
"""

from receiver.app import create_app, create_metrics_app
from receiver.config import MetricsConfig, ReceiverConfig
from receiver.enqueue import EnqueueFailed, Envelope, RedisEnqueuer, build_message
from receiver.outcomes import OUTCOMES, Outcome, Outcomes
from receiver.spool import Spool, SpoolSize

__all__ = [
    "OUTCOMES",
    "EnqueueFailed",
    "Envelope",
    "MetricsConfig",
    "Outcome",
    "Outcomes",
    "ReceiverConfig",
    "RedisEnqueuer",
    "Spool",
    "SpoolSize",
    "build_message",
    "create_app",
    "create_metrics_app",
]
