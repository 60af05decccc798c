"""A fake Qlara API on loopback, for tests and demos: ``qlara-sidecar fake-qlara``.

It serves the status and registration endpoints of both surfaces (see :mod:`qlara_api.client`)
for the messages it is told about, checks ``X-Api-Key``, enforces the account's limits with
real 429s (``retryAfter`` and ``X-RateLimit-*``), and keeps a log of every request it
answered, so a test can assert from the fake's own record that it never saw more than its
limit. Its control endpoints (under ``/_fake``, no key) feed it messages and inject faults:

- ``POST /_fake/messages``: ``[{"messageId","customerMessageId","channel","status",
  "description"}]``, added or replaced;
- ``POST /_fake/faults``: ``{"errors": N}`` (the next N API calls answer 500), ``{"delay": S}``
  (every answer waits S seconds), ``{"strictChannel": true}`` (a status asked on the wrong
  channel is a 404, as the partner gateway does);
- ``GET /_fake/log``: ``[{"t","method","path","status"}]``, ``t`` in seconds since start (and
  ``retryAfter`` on a 429).

Built on Litestar (the receiver's framework) and served with uvicorn.
"""

from __future__ import annotations

import asyncio
import math
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from litestar import Litestar, Request, Response, delete, get, post, put
from litestar.datastructures import State
from litestar.params import FromPath

from qlara_api.limits import Limits

_API = "/api"
_GATEWAY = f"{_API}/partner-gateway/v1"


@dataclass
class FakeMessage:
    message_id: str
    channel: str
    status: str
    customer_message_id: str | None = None
    description: str | None = None


@dataclass
class FakeQlara:
    """The fake's state: messages, registration, faults, limits and the request log."""

    api_key: str
    limits: Limits = field(default_factory=Limits)
    messages: dict[str, FakeMessage] = field(default_factory=dict)
    registration: dict[str, Any] | None = None
    errors: int = 0
    delay: float = 0.0
    strict_channel: bool = True
    log: list[dict[str, Any]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    _recent: deque[float] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, items: list[dict[str, Any]]) -> int:
        with self._lock:
            for item in items:
                message = FakeMessage(
                    message_id=str(item["messageId"]),
                    channel=str(item.get("channel") or "sms").lower(),
                    status=str(item.get("status") or "SENT").upper(),
                    customer_message_id=item.get("customerMessageId"),
                    description=item.get("description"),
                )
                self.messages[message.message_id] = message
                if message.customer_message_id:
                    self.messages[message.customer_message_id] = message
            return len(items)

    def admit(self) -> tuple[int, dict[str, str], Any] | None:
        """``None`` when an API call may be answered; else the 429 or 500 to give."""
        with self._lock:
            now = time.monotonic()
            second, minute = self.limits.time_scale, 60 * self.limits.time_scale
            recent = self._recent
            while recent and recent[0] <= now - minute:
                recent.popleft()
            last_second = sum(1 for t in recent if t > now - second)
            if len(recent) >= self.limits.per_minute or last_second >= self.limits.per_second:
                # Qlara names whole seconds; a scaled-down fake names what its windows take.
                until = (
                    second if last_second >= self.limits.per_second else recent[0] + minute - now
                )
                wait = max(math.ceil(until), 1) if self.limits.time_scale == 1 else round(until, 3)
                headers = {
                    "Retry-After": str(wait),
                    "X-RateLimit-Limit": str(self.limits.per_minute),
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": str(wait),
                }
                body = {
                    "status": 429,
                    "error": "Too Many Requests",
                    "message": "rate limit exceeded for this API key",
                    "retryAfter": wait,
                }
                return 429, headers, body
            recent.append(now)
            if self.errors > 0:
                self.errors -= 1
                return 500, {}, {"status": 500, "error": "Internal Server Error"}
            return None

    def record(self, method: str, path: str, status: int, retry_after: float | None = None) -> None:
        with self._lock:
            entry: dict[str, Any] = {
                "t": round(time.monotonic() - self.started, 6),
                "method": method,
                "path": path,
                "status": status,
            }
            if retry_after is not None:
                entry["retryAfter"] = retry_after
            self.log.append(entry)


async def _guarded(request: Request[Any, Any, Any], answer: Any) -> Response[Any]:
    """Check the key and the limits, then answer with ``answer()`` -> (status, body)."""
    fake: FakeQlara = request.app.state.fake
    path = request.url.path
    if request.headers.get("x-api-key") != fake.api_key:
        fake.record(request.method, path, 401)
        return Response({"status": 401, "error": "Unauthorized"}, status_code=401)
    refused = fake.admit()
    if fake.delay:
        await asyncio.sleep(fake.delay)
    if refused is not None:
        status, headers, body = refused
        fake.record(request.method, path, status, body.get("retryAfter"))
        return Response(body, status_code=status, headers=headers)
    status, body = answer()
    fake.record(request.method, path, status)
    return Response(body, status_code=status)


def _status_of(message: FakeMessage, gateway: bool) -> dict[str, Any]:
    if gateway:
        return {
            "deliveryStatus": message.status,
            "deliveryStatusDescription": message.description,
        }
    return {
        "messageId": message.message_id,
        "customerMessageId": message.customer_message_id,
        "status": message.status,
        "statusDescription": message.description,
    }


def _find(fake: FakeQlara, message_id: str, channel: str | None) -> FakeMessage | None:
    message = fake.messages.get(message_id)
    if message is None:
        return None
    if channel is not None and fake.strict_channel and message.channel != channel.lower():
        return None
    return message


@get(f"{_API}/messages/status/{{message_id:str}}")
async def guide_status(request: Request[Any, Any, Any], message_id: FromPath[str]) -> Response[Any]:
    fake: FakeQlara = request.app.state.fake

    def answer() -> tuple[int, Any]:
        message = _find(fake, message_id, None)
        if message is None:
            return 404, {"status": 404, "error": "Not Found"}
        return 200, _status_of(message, gateway=False)

    return await _guarded(request, answer)


@get(f"{_API}/messages/status")
async def guide_statuses(request: Request[Any, Any, Any]) -> Response[Any]:
    fake: FakeQlara = request.app.state.fake
    ids = [i for i in request.query_params.get("customerMessageIds", "").split(",") if i]

    def answer() -> tuple[int, Any]:
        found = [_find(fake, i, None) for i in ids]
        return 200, [
            {**_status_of(m, gateway=False), "customerMessageId": i}
            for i, m in zip(ids, found, strict=True)
            if m is not None
        ]

    return await _guarded(request, answer)


@get(f"{_GATEWAY}/messages/status/{{message_id:str}}")
async def gateway_status(
    request: Request[Any, Any, Any], message_id: FromPath[str]
) -> Response[Any]:
    fake: FakeQlara = request.app.state.fake
    channel = request.query_params.get("channel")

    def answer() -> tuple[int, Any]:
        if not channel:
            return 400, {"status": 400, "error": "channel is required"}
        message = _find(fake, message_id, channel)
        if message is None:
            return 404, {"status": 404, "error": "Not Found"}
        return 200, _status_of(message, gateway=True)

    return await _guarded(request, answer)


@get(f"{_GATEWAY}/messages/status")
async def gateway_statuses(request: Request[Any, Any, Any]) -> Response[Any]:
    fake: FakeQlara = request.app.state.fake
    channel = request.query_params.get("channel")
    ids = [i for i in request.query_params.get("ids", "").split(",") if i]

    def answer() -> tuple[int, Any]:
        if not channel:
            return 400, {"status": 400, "error": "channel is required"}
        out = []
        for i in ids:
            message = _find(fake, i, channel)
            if message is not None:  # unknown ids are silently left out
                out.append({"id": i, **_status_of(message, gateway=True)})
        return 200, out

    return await _guarded(request, answer)


@get(f"{_API}/webhooks/delivery-status")
async def guide_registration(request: Request[Any, Any, Any]) -> Response[Any]:
    fake: FakeQlara = request.app.state.fake

    def answer() -> tuple[int, Any]:
        if fake.registration is None:
            return 404, {"status": 404, "error": "Not Found"}
        return 200, {"url": fake.registration["callbackUrl"], "method": "POST"}

    return await _guarded(request, answer)


@post(f"{_API}/webhooks/delivery-status")
async def guide_register(request: Request[Any, Any, Any]) -> Response[Any]:
    fake: FakeQlara = request.app.state.fake
    body = await request.json()

    def answer() -> tuple[int, Any]:
        fake.registration = _registration(str(body.get("url")))
        return 200, {"url": body.get("url"), "method": "POST"}

    return await _guarded(request, answer)


@get(f"{_GATEWAY}/webhooks/delivery-status")
async def gateway_registration(request: Request[Any, Any, Any]) -> Response[Any]:
    fake: FakeQlara = request.app.state.fake

    def answer() -> tuple[int, Any]:
        if fake.registration is None:
            return 404, {"status": 404, "error": "Not Found"}
        return 200, fake.registration

    return await _guarded(request, answer)


@post(f"{_GATEWAY}/webhooks/delivery-status")
async def gateway_create(request: Request[Any, Any, Any]) -> Response[Any]:
    fake: FakeQlara = request.app.state.fake
    body = await request.json()

    def answer() -> tuple[int, Any]:
        if fake.registration is not None:
            return 409, {"status": 409, "error": "Conflict"}
        fake.registration = _registration(str(body.get("callbackUrl")))
        return 201, fake.registration

    return await _guarded(request, answer)


@put(f"{_GATEWAY}/webhooks/delivery-status")
async def gateway_replace(request: Request[Any, Any, Any]) -> Response[Any]:
    fake: FakeQlara = request.app.state.fake
    body = await request.json()

    def answer() -> tuple[int, Any]:
        if fake.registration is None:
            return 404, {"status": 404, "error": "Not Found"}
        fake.registration = _registration(str(body.get("callbackUrl")))
        return 200, fake.registration

    return await _guarded(request, answer)


# The handler's own status is a placeholder: every answer is a Response with its own.
@delete(f"{_GATEWAY}/webhooks/delivery-status", status_code=200)
async def gateway_revoke(request: Request[Any, Any, Any]) -> Response[Any]:
    fake: FakeQlara = request.app.state.fake

    def answer() -> tuple[int, Any]:
        if fake.registration is None:
            return 404, {"status": 404, "error": "Not Found"}
        fake.registration = None
        return 204, None

    return await _guarded(request, answer)


def _registration(url: str) -> dict[str, Any]:
    return {
        "id": "wh-1",
        "callbackUrl": url,
        "status": "ACTIVE",
        "createdAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


@post("/_fake/messages", status_code=200)
async def feed(request: Request[Any, Any, Any]) -> dict[str, int]:
    body = await request.json()
    items = body if isinstance(body, list) else [body]
    return {"added": request.app.state.fake.add(items)}


@post("/_fake/faults", status_code=200)
async def faults(request: Request[Any, Any, Any]) -> dict[str, Any]:
    fake: FakeQlara = request.app.state.fake
    body = await request.json()
    fake.errors = int(body.get("errors", fake.errors))
    fake.delay = float(body.get("delay", fake.delay))
    fake.strict_channel = bool(body.get("strictChannel", fake.strict_channel))
    return {"errors": fake.errors, "delay": fake.delay, "strictChannel": fake.strict_channel}


@get("/_fake/log")
async def request_log(request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
    fake: FakeQlara = request.app.state.fake
    with fake._lock:
        return list(fake.log)


def create_fake_app(fake: FakeQlara) -> Litestar:
    """The fake's app over ``fake`` (its state, shared with whoever holds it)."""
    return Litestar(
        route_handlers=[
            guide_status,
            guide_statuses,
            gateway_status,
            gateway_statuses,
            guide_registration,
            guide_register,
            gateway_registration,
            gateway_create,
            gateway_replace,
            gateway_revoke,
            feed,
            faults,
            request_log,
        ],
        state=State({"fake": fake}),
        openapi_config=None,
        logging_config=None,
        debug=False,
    )


class FakeServer:
    """``fake`` served over HTTP on a free loopback port, in a thread of this process: what
    `demo` polls, and what the tests' ``serve_fake`` gives them."""

    def __init__(self, fake: FakeQlara) -> None:
        import uvicorn  # the server: imported only when a fake is served

        self.fake = fake
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        config = uvicorn.Config(create_fake_app(fake), log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    @property
    def api_url(self) -> str:
        """The base URL of its API, as ``QLARA_SIDECAR_QLARA_API_URL`` takes it."""
        return f"{self.base_url}{_API}"

    def start(self, timeout: float = 15.0) -> FakeServer:
        """Serve, and return once it answers; ``RuntimeError`` if it does not in time."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake Qlara API did not start")
            time.sleep(0.05)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=timeout)
        self._socket.close()


def most_in_any_window(times: list[float], seconds: float) -> int:
    """The most of ``times`` (sorted) that fall in any window ``[t, t + seconds)``."""
    most, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - seconds:
            start += 1
        most = max(most, end - start + 1)
    return most
