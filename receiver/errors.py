"""Every error the app answers, as JSON, in one place.

No input yields a 500: Litestar's own refusals (unknown path, wrong method, a path or query
value it cannot read, a bad Host header) become their 4xx with ``{"error": ...}`` (and
``"parameter"`` when one query parameter is at fault). A 500 is left only for a fault of the
receiver itself; it is logged by type, never with the request's values.
"""

from __future__ import annotations

from typing import Any

import structlog
from litestar import Request, Response
from litestar.exceptions import (
    ClientException,
    HTTPException,
    NotAuthorizedException,
    ValidationException,
)
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR, HTTP_503_SERVICE_UNAVAILABLE
from litestar.types import ExceptionHandlersMap

from ledger import LedgerUnavailable

log = structlog.get_logger(__name__)


class BadParameter(ClientException):
    """A query parameter's value cannot be used: 400 naming the parameter."""

    def __init__(self, parameter: str, problem: str) -> None:
        super().__init__(detail=problem, extra={"parameter": parameter})
        self.parameter = parameter


class ReadUnauthorized(NotAuthorizedException):
    """The bearer token of the read API (or of ``/metrics``) is missing or wrong."""

    def __init__(self) -> None:
        super().__init__(
            detail="missing or invalid bearer token",
            headers={"WWW-Authenticate": 'Bearer realm="qlara-sidecar"'},
        )


def _http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {"error": _detail(exc)}
    if isinstance(exc, BadParameter):
        body["parameter"] = exc.parameter
    return Response(body, status_code=exc.status_code, headers=exc.headers)


def _detail(exc: HTTPException) -> str:
    if isinstance(exc, ValidationException):
        # Litestar's text names the method and path, which may carry values: keep it generic.
        return "invalid request"
    if exc.status_code >= 500:
        return "internal error"
    return str(exc.detail).lower()


def _ledger_unavailable(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.warning("ledger_unavailable", error=type(exc).__name__)
    return Response(
        {"error": "the ledger is unavailable; retry later"},
        status_code=HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": "5"},
    )


def _internal(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.error("internal_error", error=type(exc).__name__)
    return Response({"error": "internal error"}, status_code=HTTP_500_INTERNAL_SERVER_ERROR)


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    HTTPException: _http_error,
    LedgerUnavailable: _ledger_unavailable,
    Exception: _internal,
}
