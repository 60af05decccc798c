"""What can go wrong when asking Qlara, one type each, mapped from an answer in one place."""

from __future__ import annotations


class QlaraApiError(Exception):
    """A call to Qlara's API did not give an answer. ``status`` is the HTTP status, when one
    came back. Messages never carry the API key."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class BadKey(QlaraApiError):
    """401: the API key is wrong or revoked (QLARA_SIDECAR_QLARA_API_KEY)."""


class IpNotAllowed(QlaraApiError):
    """403: this host's address is not on the account's allowlist."""


class NotFound(QlaraApiError):
    """404: Qlara knows no such message (on the partner gateway: or not on that channel), or
    no webhook is registered."""


class Conflict(QlaraApiError):
    """409: a webhook registration already exists (the partner gateway's POST)."""


class RateLimited(QlaraApiError):
    """429 still, after waiting as told: ``retry_after`` is Qlara's last word, in seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, 429)
        self.retry_after = retry_after


class ServerError(QlaraApiError):
    """5xx, or an answer that could not be read."""


class Unreachable(QlaraApiError):
    """No answer: connection refused, timeout, TLS failure."""


class CircuitOpen(QlaraApiError):
    """Not tried: the breaker is open after repeated failures; ``retry_in`` seconds until it
    probes again."""

    def __init__(self, retry_in: float) -> None:
        super().__init__(f"Qlara's API failed repeatedly; next probe in {retry_in:.0f} s")
        self.retry_in = retry_in


def error_for(status: int, what: str) -> QlaraApiError:
    """The error an unsuccessful HTTP status stands for (``what``: the call, for the message)."""
    if status == 401:
        return BadKey(f"{what}: 401, the API key was refused", status)
    if status == 403:
        return IpNotAllowed(f"{what}: 403, this host's address is not allowed", status)
    if status == 404:
        return NotFound(f"{what}: 404, not found", status)
    if status == 409:
        return Conflict(f"{what}: 409, already exists", status)
    if status >= 500:
        return ServerError(f"{what}: {status} from Qlara", status)
    return QlaraApiError(f"{what}: unexpected {status} from Qlara", status)
