"""Qlara's API: the status of a message, and the webhook registration, asked within the
account's rate limits and behind a circuit breaker. Imports nothing of the sidecar but
:mod:`qlara`."""

from qlara_api.breaker import CircuitBreaker
from qlara_api.client import (
    BATCH,
    DEFAULT_URL,
    VARIANTS,
    PolledStatus,
    QlaraClient,
    Registration,
    Variant,
    retry_after_of,
)
from qlara_api.errors import (
    BadKey,
    CircuitOpen,
    Conflict,
    IpNotAllowed,
    NotFound,
    QlaraApiError,
    RateLimited,
    ServerError,
    Unreachable,
)
from qlara_api.limits import TRIAL, Limits, RateLimiter

__all__ = [
    "BATCH",
    "DEFAULT_URL",
    "TRIAL",
    "VARIANTS",
    "BadKey",
    "CircuitBreaker",
    "CircuitOpen",
    "Conflict",
    "IpNotAllowed",
    "Limits",
    "NotFound",
    "PolledStatus",
    "QlaraApiError",
    "QlaraClient",
    "RateLimited",
    "RateLimiter",
    "Registration",
    "ServerError",
    "Unreachable",
    "Variant",
    "retry_after_of",
]
