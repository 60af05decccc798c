"""No input of any kind yields a 500: random methods, paths, headers, bodies, sizes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import Ledger
from receiver import ReceiverConfig, create_app
from tests.receiver.conftest import READ_TOKEN, TOKEN, event_json

pytestmark = pytest.mark.redis

PREFIXES = [
    "/webhook",
    "/webhook/",
    f"/webhook/{TOKEN}",
    f"/webhook/{TOKEN}/",
    "/v1/messages/",
    "/v1/messages",
    "/v1/stats/webhook",
    "/healthz",
    "/readyz",
    "/schema",
    "/",
]
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "TRACE", "BREW"]
HEADER_NAMES = [
    b"content-type",
    b"content-length",
    b"transfer-encoding",
    b"x-webhook-token",
    b"authorization",
    b"x-forwarded-for",
    b"host",
    b"x-random",
]
VALID_BODY = json.dumps(event_json()).encode()

header_values = st.one_of(
    st.binary(max_size=60),
    st.sampled_from(
        [
            b"application/json",
            b"application/x+json; a=b",
            b"text/plain",
            TOKEN.encode(),
            "tökén".encode(),
            b"Bearer " + READ_TOKEN.encode(),
            b"Basic \xff\xfe",
            b"99999999999999999999999",
            b"-1",
            b"chunked",
        ]
    ),
)
bodies = st.one_of(
    st.binary(max_size=300),
    st.just(VALID_BODY),
    st.just(b"[" + VALID_BODY + b", 1, {}]"),
    st.just(b"x" * 5000),
)


@pytest.fixture
def running_app(
    tmp_path: Any, redis_url: str, namespace: str, sqlite_url: str, config: ReceiverConfig
) -> Iterator[tuple[Any, asyncio.AbstractEventLoop]]:
    Ledger.connect(sqlite_url).close()  # migrated, so read calls reach real tables
    app = create_app(replace(config, max_body_bytes=1024))
    loop = asyncio.new_event_loop()
    loop.run_until_complete(app.state.runtime.start())
    yield app, loop
    loop.run_until_complete(app.state.runtime.stop())
    loop.close()


async def call(
    app: Any,
    method: str,
    path: str,
    query: bytes,
    headers: list[tuple[bytes, bytes]],
    chunks: list[bytes],
) -> list[dict[str, Any]]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogatepass"),
        "root_path": "",
        "query_string": query,
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("testserver", 80),
        "state": {},
    }
    pending = list(chunks) or [b""]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if pending:
            chunk = pending.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(pending)}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    method=st.one_of(st.just("POST"), st.sampled_from(METHODS)),
    prefix=st.sampled_from(PREFIXES),
    suffix=st.one_of(st.just(""), st.text(max_size=30)),
    query=st.binary(max_size=40),
    headers=st.lists(st.tuples(st.sampled_from(HEADER_NAMES), header_values), max_size=6),
    body=bodies,
    chunk_size=st.integers(min_value=1, max_value=2000),
)
def test_no_request_gets_a_500(
    running_app: tuple[Any, asyncio.AbstractEventLoop],
    method: str,
    prefix: str,
    suffix: str,
    query: bytes,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    chunk_size: int,
) -> None:
    app, loop = running_app
    chunks = [body[i : i + chunk_size] for i in range(0, len(body), chunk_size)]

    sent = loop.run_until_complete(call(app, method, prefix + suffix, query, headers, chunks))

    starts = [m for m in sent if m["type"] == "http.response.start"]
    if not starts:  # the client "disconnected" before its body was read: nothing to answer
        return
    assert len(starts) == 1
    status = starts[0]["status"]
    assert status < 500 or status == 503, (method, prefix + suffix, headers, status)
    answer = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    content_type = dict(starts[0]["headers"]).get(b"content-type", b"")
    if answer and content_type.startswith(b"application/json"):
        json.loads(answer)
