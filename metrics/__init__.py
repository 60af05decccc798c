"""Prometheus metrics of the sidecar: definitions, the counting done as events are recorded,
scrape-time collectors for what is waiting, and the exposition served at ``GET /metrics``.

Counting happens where things happen (the receiver's intake, the workers' on-recorded hook,
the dead-letter writer); receiver and worker processes share one exposition through
prometheus-client's multiprocess mode (:mod:`metrics.multiproc`). Imports nothing of the
sidecar but :mod:`qlara`.
"""

from metrics.definitions import (
    API_REQUESTS,
    BUILD_INFO,
    CHANNELS,
    DEAD_LETTER_REASONS,
    DEAD_LETTERS,
    DELIVERY_ERRORS,
    DELIVERY_LATENCY,
    DUPLICATE_EVENTS,
    EVENTS,
    LAST_EVENT,
    POLL_RESULTS,
    RECEIPTS_REPLAYED,
    RECONCILE_FILLED,
    RECONCILE_POLLS,
    REQUEST_OUTCOMES,
    SENDS_REQUESTS,
    STATUSES,
    WEBHOOK_ACK,
    WEBHOOK_DELAY,
    WEBHOOK_IMPLAUSIBLE,
    WEBHOOK_REQUESTS,
    DeadLetterReason,
    channel_label,
    initialise,
    status_label,
)
from metrics.error_classes import ERROR_CLASSES, ErrorClass, classify_error, delivery_error_class
from metrics.exposition import CONTENT_TYPE, render, scrape_registry
from metrics.multiproc import MULTIPROC_ENV, multiprocess_mode, prepare_dir, process_exited
from metrics.recorded import RecordedReceipt, count_recorded, seed_last_events
from metrics.state import Pending, StateCollector

__all__ = [
    "API_REQUESTS",
    "BUILD_INFO",
    "CHANNELS",
    "CONTENT_TYPE",
    "DEAD_LETTERS",
    "DEAD_LETTER_REASONS",
    "DELIVERY_ERRORS",
    "DELIVERY_LATENCY",
    "DUPLICATE_EVENTS",
    "ERROR_CLASSES",
    "EVENTS",
    "LAST_EVENT",
    "MULTIPROC_ENV",
    "POLL_RESULTS",
    "RECEIPTS_REPLAYED",
    "RECONCILE_FILLED",
    "RECONCILE_POLLS",
    "REQUEST_OUTCOMES",
    "SENDS_REQUESTS",
    "STATUSES",
    "WEBHOOK_ACK",
    "WEBHOOK_DELAY",
    "WEBHOOK_IMPLAUSIBLE",
    "WEBHOOK_REQUESTS",
    "DeadLetterReason",
    "ErrorClass",
    "Pending",
    "RecordedReceipt",
    "StateCollector",
    "channel_label",
    "classify_error",
    "count_recorded",
    "delivery_error_class",
    "initialise",
    "multiprocess_mode",
    "prepare_dir",
    "process_exited",
    "render",
    "scrape_registry",
    "seed_last_events",
    "status_label",
]
