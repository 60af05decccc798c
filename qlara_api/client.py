"""Qlara's API, as the sidecar uses it: message status and webhook registration.

Both documented surfaces (FACTS.md), relative to one base URL (default
``https://lora-api.agiletelecom.com/api``):

- ``messages`` (the Webhooks guide): ``GET /messages/status/{id}``, batch
  ``GET /messages/status?customerMessageIds=a,b,c``; ``POST /webhooks/delivery-status`` with
  ``{"url","method":"POST"}`` (a new one replaces the old).
- ``partner-gateway``: ``GET /partner-gateway/v1/messages/status/{id}?channel=SMS``, batch
  ``?ids=a,b,c&channel=...`` (one channel per call; unknown ids are left out of the answer);
  ``/partner-gateway/v1/webhooks/delivery-status`` with ``{"callbackUrl"}``: GET reads, POST
  creates (409 if one exists), PUT replaces, DELETE revokes.

Every call sends ``X-Api-Key``, has a timeout, waits for the :class:`~qlara_api.limits.RateLimiter`
and asks the :class:`~qlara_api.breaker.CircuitBreaker`. A 429 pauses the limiter for the time
Qlara names (``retryAfter`` in the body, else ``Retry-After``, else ``X-RateLimit-Reset``) and
the call is tried again, up to ``attempts`` times; other answers map to the errors of
:mod:`qlara_api.errors`. ``on_answer(endpoint, code)`` is told of every answer (``code`` is
the HTTP status, or ``error`` when none came), for ``qlara_api_requests_total``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import httpx

from qlara_api.breaker import CircuitBreaker
from qlara_api.errors import (
    CircuitOpen,
    NotFound,
    QlaraApiError,
    RateLimited,
    ServerError,
    Unreachable,
    error_for,
)
from qlara_api.limits import RateLimiter

Variant = Literal["messages", "partner-gateway"]
VARIANTS: tuple[Variant, ...] = ("messages", "partner-gateway")
DEFAULT_URL = "https://lora-api.agiletelecom.com/api"
#: Ids per batch status call ("a few hundred at most" on the partner gateway).
BATCH = 100
#: Seconds waited after a 429 that names no time.
DEFAULT_RETRY_AFTER = 5.0

OnAnswer = Callable[[str, str], None]


@dataclass(frozen=True, slots=True)
class PolledStatus:
    """What Qlara's status API says of one message: ``status`` lower-case as given (a status
    Qlara adds later is kept), and its description."""

    message_id: str
    status: str
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Registration:
    """The webhook Qlara has on file: its URL, and what else it said (``status``, ``id``)."""

    url: str
    status: str | None = None
    registration_id: str | None = None


class QlaraClient:
    """A blocking client; thread-safe (one ``httpx.Client``, a shared limiter and breaker)."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_URL,
        variant: Variant = "messages",
        timeout: float = 10.0,
        limiter: RateLimiter | None = None,
        breaker: CircuitBreaker | None = None,
        attempts: int = 3,
        on_answer: OnAnswer | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if variant not in VARIANTS:
            raise ValueError(f"unknown API variant {variant!r}: use one of {', '.join(VARIANTS)}")
        self.variant: Variant = variant
        self.limiter = limiter if limiter is not None else RateLimiter()
        self.breaker = breaker if breaker is not None else CircuitBreaker()
        self._attempts = max(attempts, 1)
        self._on_answer = on_answer
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + "/",
            headers={"X-Api-Key": api_key, "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    # -- status ---------------------------------------------------------------------------

    def status(self, message_id: str, channel: str | None = None) -> PolledStatus | None:
        """One message's status; ``None`` when Qlara knows no such message."""
        if self.variant == "messages":
            path, params = f"messages/status/{_segment(message_id)}", {}
        else:
            path = f"partner-gateway/v1/messages/status/{_segment(message_id)}"
            params = {"channel": _channel(channel)}
        try:
            answer = self._call("GET", path, "status", params=params)
        except NotFound:
            return None
        return _polled(message_id, answer)

    def statuses(
        self, message_ids: Sequence[str], channel: str | None = None
    ) -> dict[str, PolledStatus]:
        """Many messages' statuses, ``BATCH`` ids a call; those Qlara does not know are
        absent from the answer."""
        found: dict[str, PolledStatus] = {}
        for start in range(0, len(message_ids), BATCH):
            chunk = list(message_ids[start : start + BATCH])
            if self.variant == "messages":
                path, params = "messages/status", {"customerMessageIds": ",".join(chunk)}
            else:
                path = "partner-gateway/v1/messages/status"
                params = {"ids": ",".join(chunk), "channel": _channel(channel)}
            answer = self._call("GET", path, "status_batch", params=params)
            wanted = set(chunk)
            for item in _items(answer):
                item_id = _first(item, "customerMessageId", "messageId", "id")
                if item_id in wanted:
                    found[item_id] = _polled(item_id, item)
        return found

    # -- webhook registration ---------------------------------------------------------------

    def registration(self) -> Registration | None:
        """The webhook on file, ``None`` when there is none."""
        try:
            answer = self._call("GET", self._webhook_path, "webhook")
        except NotFound:
            return None
        if not isinstance(answer, dict):
            raise ServerError("webhook: the answer is not a JSON object")
        url = _first(answer, "callbackUrl", "url")
        if url is None:
            return None
        return Registration(url, _first(answer, "status"), _first(answer, "id"))

    def register(self, url: str) -> None:
        """Register ``url`` (HTTPS only), replacing what is on file."""
        if not url.startswith("https://"):
            raise ValueError(
                "Qlara only calls HTTPS URLs: the webhook URL must start with https://"
            )
        if self.variant == "messages":
            self._call("POST", self._webhook_path, "webhook", body={"url": url, "method": "POST"})
            return
        try:
            self._call("POST", self._webhook_path, "webhook", body={"callbackUrl": url})
        except QlaraApiError as exc:
            if exc.status != 409:
                raise
            self._call("PUT", self._webhook_path, "webhook", body={"callbackUrl": url})

    def revoke(self) -> None:
        """Revoke the registration (the partner gateway's DELETE; events already in flight
        may still arrive at the old URL)."""
        if self.variant == "messages":
            raise QlaraApiError("the messages surface documents no way to revoke a webhook")
        self._call("DELETE", self._webhook_path, "webhook")

    @property
    def _webhook_path(self) -> str:
        if self.variant == "messages":
            return "webhooks/delivery-status"
        return "partner-gateway/v1/webhooks/delivery-status"

    # -- one call ---------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        endpoint: str,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> Any:
        retry_after = DEFAULT_RETRY_AFTER
        for _ in range(self._attempts):
            if not self.breaker.allow():
                raise CircuitOpen(self.breaker.retry_in())
            self.limiter.acquire()
            try:
                response = self._http.request(method, path, params=params, json=body)
            except httpx.HTTPError as exc:
                self._told(endpoint, "error")
                self.breaker.record(ok=False)
                raise Unreachable(
                    f"{endpoint}: no answer from Qlara ({type(exc).__name__})"
                ) from None
            code = response.status_code
            self._told(endpoint, str(code))
            self.breaker.record(ok=code < 500)
            if code == 429:
                retry_after = retry_after_of(response)
                self.limiter.pause(retry_after)
                continue
            if code >= 400:
                raise error_for(code, endpoint)
            if code == 204 or not response.content:
                return None
            try:
                return response.json()
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise ServerError(f"{endpoint}: the answer is not JSON", code) from None
        raise RateLimited(
            f"{endpoint}: still rate limited after {self._attempts} tries", retry_after
        )

    def _told(self, endpoint: str, code: str) -> None:
        if self._on_answer is not None:
            self._on_answer(endpoint, code)


def retry_after_of(response: httpx.Response) -> float:
    """The seconds a 429 asks to wait: ``retryAfter`` in its body, else ``Retry-After``, else
    ``X-RateLimit-Reset`` (seconds from now, or a unix time), else a default."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    candidates: Iterable[Any] = (
        body.get("retryAfter") if isinstance(body, dict) else None,
        response.headers.get("retry-after"),
        response.headers.get("x-ratelimit-reset"),
    )
    for value in candidates:
        seconds = _seconds(value)
        if seconds is not None:
            return seconds
    return DEFAULT_RETRY_AFTER


def _seconds(value: Any) -> float | None:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    if seconds > 1_000_000_000:  # a unix time: the moment the window resets
        seconds = max(seconds - time.time(), 0.0)
    return min(seconds, 3600.0)


def _segment(message_id: str) -> str:
    return quote(message_id, safe="")


def _channel(channel: str | None) -> str:
    if not channel:
        raise ValueError("the partner gateway needs the message's channel")
    return channel.upper()


def _items(answer: Any) -> list[dict[str, Any]]:
    if isinstance(answer, dict):
        for key in ("items", "messages", "statuses", "data"):
            if isinstance(answer.get(key), list):
                answer = answer[key]
                break
    if not isinstance(answer, list):
        raise ServerError("status batch: the answer is not a JSON list")
    return [item for item in answer if isinstance(item, dict)]


def _first(item: dict[str, Any], *names: str) -> Any:
    for name in names:
        value = item.get(name)
        if value is not None:
            return value
    return None


def _polled(message_id: str, answer: Any) -> PolledStatus:
    if not isinstance(answer, dict):
        raise ServerError("status: the answer is not a JSON object")
    status = _first(answer, "deliveryStatus", "status")
    if not isinstance(status, str) or not status.strip():
        raise ServerError("status: the answer names no status")
    description = _first(answer, "deliveryStatusDescription", "statusDescription", "description")
    return PolledStatus(
        message_id=message_id,
        status=status.strip().lower(),
        description=description if isinstance(description, str) else None,
    )
