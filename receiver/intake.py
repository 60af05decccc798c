"""The webhook intake: ``POST /webhook/{token}`` (or ``POST /webhook`` with the token in
``X-Webhook-Token``), answered 200 only once the events are durable.

It is a plain ASGI handler mounted at ``/webhook``: it is the hot path, it must decide the
order of its checks itself (authentication before the method), and it must read the body
with a hard limit. Checks, in order, each answered with one JSON body:

1. source network, token and HTTP Basic: 403 ``{"status":"forbidden"}`` or 401
   ``{"status":"unauthorized","error":"missing or invalid credentials"}``, the same for
   every cause; a client past its limit of failed authentications gets 429 with
   ``Retry-After`` instead (:mod:`receiver.throttle`; right credentials are never limited);
2. method: 405 unless POST;
3. content type: 415 unless ``application/json`` or ``application/*+json`` (parameters
   allowed; none at all is read as JSON);
4. size: 413 when ``Content-Length`` exceeds ``max_body_bytes`` (nothing read), or as soon
   as a chunked body passes it;
5. with signing secrets configured, the Standard Webhooks signature: 401 naming it when
   missing or wrong; a copy of a signed request already made durable (same webhook-id) is
   answered ``{"status":"received","duplicate":true}`` and not queued again;
6. payload: 400 ``{"status":"rejected","error":<problem>,"field":<field|null>}``; a body
   the parser fails on in a way it did not foresee is a 400 too ("the payload could not be
   read", logged as ``webhook_parse_failed``), never a 500 Qlara would resend in vain.

A single object accepted is answered ``{"status":"received"}``; an array
``{"status":"received","accepted":N,"rejected":[{"index":i,"error":...,"field":...}]}``,
or 400 with the same list when no item could be read. Durable means enqueued to Redis, or,
when Redis does not take it within the deadline, appended to the spool and fsync'd; when
neither works the answer is 503 with ``Retry-After: 5``. Refused bodies go to the reject
log. The token never appears in a log line: the path is logged as ``/webhook/***``.

Each request is counted once in ``qlara_webhook_requests_total{outcome}`` (the outcomes of
:mod:`receiver.outcomes`, ``method_not_allowed`` included) and, once its response is sent,
observed in ``qlara_webhook_ack_seconds``; a client that leaves before its body is read is in
neither.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from typing import Any, cast

import msgspec
import structlog
from litestar.enums import ScopeType
from litestar.types import Receive, Scope, Send

from metrics import SENDS_REQUESTS, WEBHOOK_ACK, WEBHOOK_IMPLAUSIBLE, WEBHOOK_REQUESTS
from qlara import InvalidPayload, ParsedBody, Receipt, parse_body, parse_sends
from receiver.auth import bearer_matches
from receiver.enqueue import EnqueueFailed, Envelope, build_message
from receiver.ids import next_receipt_id
from receiver.outcomes import Outcome, Outcomes
from receiver.runtime import Runtime
from receiver.signatures import SEEN_FOR_S, SignatureCheck
from receiver.throttle import retry_after

log = structlog.get_logger(__name__)

LOGGED_PATH = "/webhook/***"
#: Seconds the spool may take once Redis has failed; with the default enqueue deadline
#: every answer leaves within 1.5 s.
SPOOL_BUDGET = 0.75

_ENCODE = msgspec.json.encode
_RECEIVED = b'{"status":"received"}'
_UNAUTHORIZED = b'{"status":"unauthorized","error":"missing or invalid credentials"}'
_FORBIDDEN = b'{"status":"forbidden"}'
_TOO_MANY_FAILURES = (
    b'{"status":"rate_limited","error":"too many failed authentications from this client; '
    b'retry later"}'
)
_UNAVAILABLE = b'{"status":"unavailable","error":"the event cannot be stored now; retry later"}'
_NOT_FOUND = b'{"error":"not found"}'
_UNREADABLE = "the payload could not be read"
_UNSIGNED = (
    "missing or invalid webhook signature (webhook-id, webhook-timestamp, webhook-signature)"
)
_RECEIVED_AGAIN = b'{"status":"received","duplicate":true}'
_JSON = (b"content-type", b"application/json")


class _Refusal(Exception):
    """A request refused by a check: the status, the body problem, the outcome counted."""

    def __init__(
        self,
        status: int,
        problem: str,
        outcome: Outcome,
        *,
        field: str | None = None,
        headers: tuple[tuple[bytes, bytes], ...] = (),
    ) -> None:
        super().__init__(problem)
        self.status = status
        self.problem = problem
        self.outcome: Outcome = outcome
        self.field = field
        self.headers = headers


class _ClientGone(Exception):
    """The client disconnected before its body was read."""


class Intake:
    """The ASGI callable behind ``/webhook``. Holds no state of its own but ``runtime``."""

    #: The name its log events start with, and the path they show.
    name = "webhook"
    logged_path = LOGGED_PATH

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        config = runtime.config
        self._limit = config.max_body_bytes
        self._parse: Callable[[bytes, float], ParsedBody] = parse_body
        self._outcomes: Outcomes = runtime.outcomes
        self._requests = WEBHOOK_REQUESTS
        self._signatures = (
            SignatureCheck(config.signing_secrets) if config.signing_secrets else None
        )
        self._unauthorized_headers: tuple[tuple[bytes, bytes], ...] = (
            ((b"www-authenticate", b'Basic realm="qlara-sidecar"'),)
            if runtime.guard.wants_basic
            else ()
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one request to ``/webhook`` or below (Litestar mount: ``scope['path']`` is
        the rest of the path, ending in ``/``)."""
        if scope["type"] != ScopeType.HTTP:
            # A WebSocket handshake: closing it before accepting answers 403.
            await send({"type": "websocket.close", "code": 1008, "reason": ""})
            return
        rest: str = scope["path"]
        if not rest.startswith("/"):  # "/webhookfoo" reaches a mount at "/webhook" too
            await _respond(send, 404, _NOT_FOUND)
            return
        started = time.perf_counter()
        try:
            await self._answer(scope, scope["method"], rest, receive, send)
        except _ClientGone:
            log.info(f"{self.name}_client_gone", path=self.logged_path)
            return
        self._answered(time.perf_counter() - started)

    def _answered(self, seconds: float) -> None:
        WEBHOOK_ACK.observe(seconds)

    async def _answer(
        self, scope: Scope, method: str, rest: str, receive: Receive, send: Send
    ) -> None:
        headers = _Headers(scope["headers"])
        client = scope.get("client")
        guard = self.runtime.guard
        if not guard.source_allowed(client[0] if client else None, headers.forwarded_for):
            self._count("unauthorized")
            log.info("webhook_refused", path=LOGGED_PATH, status=403, reason="source")
            await _respond(send, 403, _FORBIDDEN)
            return
        token_ok = guard.token_ok(rest.strip("/"), headers.webhook_token)
        basic_ok = guard.basic_ok(headers.authorization)
        if not (token_ok and basic_ok):
            await self._refuse_credentials(scope, headers, send)
            return
        await self._accept(method, headers, receive, send)

    async def _refuse_credentials(self, scope: Scope, headers: _Headers, send: Send) -> None:
        """401 for wrong credentials; 429 once the client is past its limit of failures."""
        client = scope.get("client")
        guard = self.runtime.guard
        source = guard.client_address(client[0] if client else None, headers.forwarded_for)
        wait, started = self.runtime.throttle.failed(str(source))
        if wait is not None:
            self._count("rate_limited")
            if started:
                log.warning(f"{self.name}_auth_failures_limited", client=str(source))
            await _respond(send, 429, _TOO_MANY_FAILURES, ((b"retry-after", retry_after(wait)),))
            return
        self._count("unauthorized")
        log.info(f"{self.name}_refused", path=self.logged_path, status=401)
        await _respond(send, 401, _UNAUTHORIZED, self._unauthorized_headers)

    async def _accept(self, method: str, headers: _Headers, receive: Receive, send: Send) -> None:
        body: bytes | None = None
        try:
            if method != "POST":
                raise _Refusal(
                    405,
                    "method not allowed: use POST",
                    "method_not_allowed",
                    headers=((b"allow", b"POST"),),
                )
            if not _is_json(headers.content_type):
                body = await _read_body(receive, self._limit)
                raise _Refusal(
                    415,
                    "unsupported content type: expected application/json",
                    "unsupported_media",
                )
            length = _content_length(headers.content_length)
            if length > self._limit:
                raise _Refusal(
                    413,
                    f"body larger than {self._limit} bytes",
                    "too_large",
                    headers=((b"connection", b"close"),),
                )
            body = await _read_body(receive, self._limit)
            received_at = time.time()
            if body is None:
                raise _Refusal(
                    413,
                    f"body larger than {self._limit} bytes",
                    "too_large",
                    headers=((b"connection", b"close"),),
                )
            webhook_id = None
            if self._signatures is not None:
                webhook_id = self._signatures.verify(body, headers.raw)
                if webhook_id is None:
                    raise _Refusal(401, _UNSIGNED, "unauthorized")
            try:
                parsed = self._parse(body, received_at)
            except InvalidPayload as exc:
                raise _Refusal(400, exc.problem, "invalid", field=exc.field) from exc
            except Exception as exc:
                # A body the parser did not foresee. Qlara would resend a 500 in vain; a 400
                # is counted, and the reject log keeps the body for a replay.
                log.error(
                    f"{self.name}_parse_failed", path=self.logged_path, error=type(exc).__name__
                )
                raise _Refusal(400, _UNREADABLE, "invalid") from exc
        except _Refusal as refusal:
            await self._refuse(send, refusal, body)
            return
        await self._store(parsed, body, received_at, send, webhook_id)

    async def _store(
        self,
        parsed: ParsedBody,
        body: bytes,
        received_at: float,
        send: Send,
        webhook_id: str | None = None,
    ) -> None:
        rejected = [
            {"index": r.index, "error": r.problem, "field": r.field} for r in parsed.rejected
        ]
        if parsed.accepted == 0:  # an array with no readable item
            self._count("invalid", len(rejected))
            await self._log_reject("every item was refused", 400, None, body, rejected)
            await _respond(
                send,
                400,
                _ENCODE(
                    {
                        "status": "rejected",
                        "error": "no item of the array could be read",
                        "field": None,
                        "accepted": 0,
                        "rejected": rejected,
                    }
                ),
            )
            return
        enqueuer = self.runtime.enqueuer
        claim_key = None
        if webhook_id is not None and enqueuer is not None:
            # A signed request's webhook-id, remembered once it is taken; when Redis cannot
            # tell (None), the request is taken: the ledger records each event once anyway.
            claim_key = self._id_key(webhook_id)
            first = await enqueuer.claim(claim_key, SEEN_FOR_S)
            if first is False:  # a copy of a request already made durable
                self._count("accepted", len(rejected))
                log.info("webhook_duplicate_id", path=self.logged_path)
                await _respond(send, 200, _RECEIVED_AGAIN)
                return
            if first is None:
                claim_key = None
        receipt = Receipt(
            receipt_id=next_receipt_id(),
            received_at=received_at,
            events=tuple(parsed.events),
            inbound=tuple(parsed.inbound),
        )
        outcome = await self._make_durable(receipt)
        if outcome == "unavailable":
            if claim_key is not None and enqueuer is not None:  # let Qlara's retry through
                await enqueuer.unclaim(claim_key)
            self._count("unavailable", len(rejected))
            await _respond(send, 503, _UNAVAILABLE, ((b"retry-after", b"5"),))
            return
        self._count(outcome, len(rejected))
        noted = [{"index": n.index, "field": n.field, "problem": n.problem} for n in parsed.notes]
        self._count_notes(parsed)
        if noted:
            fields = list(dict.fromkeys(note["field"] for note in noted))  # each once, in order
            log.info(f"{self.name}_implausible_values", path=self.logged_path, fields=fields)
        if rejected or noted:
            reason = "some items were refused" if rejected else "implausible values were kept"
            await self._log_reject(reason, 200, None, body, rejected or None, noted or None)
        if parsed.is_array:
            answer = _ENCODE(
                {"status": "received", "accepted": parsed.accepted, "rejected": rejected}
            )
        else:
            answer = _RECEIVED
        await _respond(send, 200, answer)

    def _count_notes(self, parsed: ParsedBody) -> None:
        for note in parsed.notes:
            WEBHOOK_IMPLAUSIBLE.labels(note.field).inc()

    def _id_key(self, webhook_id: str) -> str:
        digest = hashlib.sha256(webhook_id.encode()).hexdigest()
        return f"{self.runtime.config.namespace}:webhook-id:{digest}"

    async def _make_durable(self, receipt: Receipt) -> Outcome:
        runtime = self.runtime
        config = runtime.config
        enqueuer = runtime.enqueuer
        if enqueuer is not None:
            try:
                await enqueuer.enqueue_receipt(
                    receipt.encode(), queue_name=config.queue_name, actor_name=config.actor_name
                )
            except EnqueueFailed:
                pass
            else:
                return "accepted"
        # The spool keeps the receipt as its own message, replayed as it is.
        envelope = Envelope.of(
            build_message(receipt, queue_name=config.queue_name, actor_name=config.actor_name)
        )
        try:
            async with asyncio.timeout(SPOOL_BUDGET):
                await asyncio.to_thread(runtime.spool.append, envelope.data)
        except (OSError, TimeoutError) as exc:
            log.error(f"{self.name}_unavailable", path=self.logged_path, error=type(exc).__name__)
            return "unavailable"
        log.warning(f"{self.name}_spooled", path=self.logged_path)
        return "spooled"

    async def _refuse(self, send: Send, refusal: _Refusal, body: bytes | None) -> None:
        self._count(refusal.outcome)
        log.info(
            f"{self.name}_refused",
            path=self.logged_path,
            status=refusal.status,
            error=refusal.problem,
            field=refusal.field,
        )
        if refusal.status != 405:
            await self._log_reject(refusal.problem, refusal.status, refusal.field, body, None)
        answer = _ENCODE({"status": "rejected", "error": refusal.problem, "field": refusal.field})
        await _respond(send, refusal.status, answer, refusal.headers)

    async def _log_reject(
        self,
        reason: str,
        status: int,
        field: str | None,
        body: bytes | None,
        rejected: list[dict[str, Any]] | None,
        noted: list[dict[str, Any]] | None = None,
    ) -> None:
        try:
            await asyncio.to_thread(
                self.runtime.rejects.write,
                reason=reason,
                status=status,
                field=field,
                body=body,
                rejected=rejected,
                noted=noted,
            )
        except OSError as exc:  # losing a reject record must not change the answer
            log.error("reject_log_failed", error=type(exc).__name__)

    def _count(self, outcome: Outcome, rejected_items: int = 0) -> None:
        self._outcomes.add(outcome, rejected_items)
        self._requests.labels(outcome).inc()


class SendsIntake(Intake):
    """The ASGI callable behind ``POST /v1/sends``: the sends the application reports.

    The webhook's intake with its own door: ``Authorization: Bearer <send token>`` (the
    send token only, compared in constant time; a client past its limit of failed
    authentications gets 429 as on the webhook), no source allowlist (it is for Qlara's
    calls) and no signature. Then the same checks, answers and durability: 200 only once
    the sends are enqueued or spooled, a 4xx naming the problem, never a 500. Each send
    becomes a ``sent`` event from the application (:func:`qlara.parse_sends`), recorded
    through the same idempotent path as Qlara's events. Counted in
    ``qlara_sends_requests_total{outcome}``.
    """

    name = "sends"
    logged_path = "/v1/sends"

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self._parse = parse_sends
        self._outcomes = runtime.send_outcomes
        self._requests = SENDS_REQUESTS
        self._signatures = None
        self._unauthorized_headers = ((b"www-authenticate", b'Bearer realm="qlara-sidecar"'),)

    def _answered(self, seconds: float) -> None:
        pass  # the acknowledgement histogram is the webhook's (what Qlara waits for)

    def _count_notes(self, parsed: ParsedBody) -> None:
        pass  # qlara_webhook_implausible_values counts Qlara's events; the log has these

    async def _answer(
        self, scope: Scope, method: str, rest: str, receive: Receive, send: Send
    ) -> None:
        if rest != "/":
            await _respond(send, 404, _NOT_FOUND)
            return
        headers = _Headers(scope["headers"])
        token = self.runtime.send_token
        if token is None or not bearer_matches(headers.authorization, token):
            await self._refuse_credentials(scope, headers, send)
            return
        await self._accept(method, headers, receive, send)


class _Headers:
    """The request headers the intake looks at, found in one pass."""

    __slots__ = (
        "authorization",
        "content_length",
        "content_type",
        "forwarded_for",
        "raw",
        "webhook_token",
    )

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.authorization: bytes | None = None
        self.content_length: bytes | None = None
        self.content_type: bytes | None = None
        self.webhook_token: bytes | None = None
        self.forwarded_for: list[bytes] = []
        for name, value in raw:
            if name == b"content-type":
                self.content_type = value
            elif name == b"content-length":
                self.content_length = value
            elif name == b"authorization":
                self.authorization = value
            elif name == b"x-webhook-token":
                self.webhook_token = value
            elif name == b"x-forwarded-for":
                self.forwarded_for.append(value)


def _is_json(content_type: bytes | None) -> bool:
    if content_type is None:
        return True
    media = content_type.split(b";", 1)[0].strip().lower()
    if not media:
        return True
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


def _content_length(value: bytes | None) -> int:
    if value is None:
        return 0
    value = value.strip()
    if not value.isdigit():
        raise _Refusal(400, "invalid Content-Length header", "invalid")
    return int(value)


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or ``None`` as soon as it passes ``limit`` bytes (rest unread)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk = cast("bytes", message.get("body", b""))
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _respond(
    send: Send, status: int, body: bytes, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [_JSON, (b"content-length", b"%d" % len(body)), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})
