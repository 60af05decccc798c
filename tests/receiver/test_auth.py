"""Who may post: the token (path or header), HTTP Basic, the source allowlist."""

from __future__ import annotations

import base64
import ipaddress
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
import uvicorn
from litestar.testing import TestClient

from receiver import ReceiverConfig, create_app
from receiver.auth import WebhookGuard
from tests.receiver.conftest import TOKEN, QueueReader, wait_for

pytestmark = pytest.mark.redis

BODY = b'{"messageId":"m-1","status":"SENT","timestamp":"2025-03-01T10:00:00Z"}'
UNAUTHORIZED = {"status": "unauthorized", "error": "missing or invalid credentials"}


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_the_token_in_the_path_is_accepted(client: TestClient[Any]) -> None:
    assert client.post(f"/webhook/{TOKEN}", content=BODY).status_code == 200


def test_the_token_in_the_header_is_accepted_on_the_bare_path(client: TestClient[Any]) -> None:
    response = client.post("/webhook", content=BODY, headers={"x-webhook-token": TOKEN})

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/webhook/wrong", {}),
        (f"/webhook/{TOKEN}x", {}),
        (f"/webhook/{TOKEN[:-1]}", {}),
        ("/webhook", {}),
        ("/webhook/", {}),
        ("/webhook", {"x-webhook-token": "wrong"}),
        ("/webhook", {"x-webhook-token": ""}),
        ("/webhook/%C3%A9t%C3%A9", {}),
        ("/webhook/%FF%FE%00", {}),
        ("/webhook/a/b/c", {}),
        (f"/webhook/{TOKEN}/extra", {}),
    ],
)
def test_a_wrong_or_missing_token_gets_one_uniform_401(
    client: TestClient[Any], queue: QueueReader, path: str, headers: dict[str, str]
) -> None:
    response = client.post(path, content=BODY, headers=headers)

    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED
    assert len(queue) == 0


def test_a_non_ascii_token_header_gets_the_uniform_401(client: TestClient[Any]) -> None:
    response = client.post(
        "/webhook", content=BODY, headers=[(b"x-webhook-token", "tökén\xff".encode("latin-1"))]
    )

    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


def test_refusals_are_counted_and_never_log_the_token(
    client: TestClient[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    client.post(f"/webhook/{TOKEN}", content=b"{")
    client.post("/webhook/guess-me", content=BODY)

    logged = capsys.readouterr()
    assert TOKEN not in logged.out + logged.err
    assert "guess-me" not in logged.out + logged.err
    assert client.app.state.outcomes["unauthorized"] == 1


def test_without_auth_allowed_the_bare_path_needs_no_token(
    config: ReceiverConfig, make_client: Any
) -> None:
    client = make_client(config, webhook_token=None, allow_no_auth=True)

    assert client.post("/webhook", content=BODY).status_code == 200
    assert client.post("/webhook/anything", content=BODY).status_code == 401


def test_a_token_is_required_unless_no_auth_is_explicitly_allowed(
    config: ReceiverConfig,
) -> None:
    with pytest.raises(ValueError, match="webhook_token"):
        replace(config, webhook_token=None)


@pytest.mark.parametrize(
    "authorization",
    [None, basic("qlara", "x"), basic("other", "pa:ss"), "Basic !!notb64", "Bearer pa:ss"],
)
def test_basic_credentials_when_configured_are_required_on_top_of_the_token(
    config: ReceiverConfig, make_client: Any, authorization: str | None
) -> None:
    client = make_client(config, basic_auth=("qlara", "pa:ss"))
    headers = {} if authorization is None else {"authorization": authorization}

    response = client.post(f"/webhook/{TOKEN}", content=BODY, headers=headers)

    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED
    assert response.headers["www-authenticate"].startswith("Basic")


def test_right_basic_credentials_and_token_are_accepted(
    config: ReceiverConfig, make_client: Any
) -> None:
    client = make_client(config, basic_auth=("qlara", "pa:ss"))
    headers = {"authorization": basic("qlara", "pa:ss")}

    assert client.post(f"/webhook/{TOKEN}", content=BODY, headers=headers).status_code == 200
    assert client.post("/webhook/nope", content=BODY, headers=headers).status_code == 401


# The guard's address logic, directly.


def guard(config: ReceiverConfig, **changes: Any) -> WebhookGuard:
    return WebhookGuard(replace(config, **changes))


def test_the_direct_peer_is_the_client_when_it_is_not_a_trusted_proxy(
    config: ReceiverConfig,
) -> None:
    g = guard(config, trusted_proxies=("10.0.0.0/8",))

    assert g.client_address("192.0.2.1", [b"198.51.100.7"]) == ipaddress.ip_address("192.0.2.1")


def test_behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client(
    config: ReceiverConfig,
) -> None:
    g = guard(config, trusted_proxies=("10.0.0.0/8", "127.0.0.1/32"))

    address = g.client_address("10.0.0.2", [b"203.0.113.9, 198.51.100.7", b"10.0.0.1"])

    assert address == ipaddress.ip_address("198.51.100.7")


def test_an_unreadable_forwarded_hop_is_not_believed(config: ReceiverConfig) -> None:
    g = guard(config, trusted_proxies=("10.0.0.0/8",), allowed_networks=("0.0.0.0/0",))

    assert g.client_address("10.0.0.2", [b"198.51.100.7, not-an-ip"]) is None
    assert not g.source_allowed("10.0.0.2", [b"garbage\xff"])


def test_an_empty_allowlist_admits_any_source(config: ReceiverConfig) -> None:
    assert guard(config).source_allowed(None, [])


def test_a_bad_cidr_is_refused_when_the_app_is_built(config: ReceiverConfig) -> None:
    with pytest.raises(ValueError, match="CIDR"):
        create_app(replace(config, allowed_networks=("10.0.0.0/33",)))


# The allowlist end to end, over real sockets (the peer address must be real).


@pytest.fixture
def serve(config: ReceiverConfig) -> Iterator[Any]:
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(**changes: Any) -> str:
        app = create_app(replace(config, **changes))
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=0,
                access_log=False,  # it would log the token in the path
                proxy_headers=False,  # the receiver decides whom to believe
                log_level="warning",
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        wait_for(lambda: server.started, what="uvicorn to start")
        port = server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)


def test_a_source_outside_the_allowlist_is_refused_with_403(serve: Any) -> None:
    base = serve(allowed_networks=("192.0.2.0/24",))

    response = httpx.post(f"{base}/webhook/{TOKEN}", content=BODY)

    assert response.status_code == 403
    assert response.json() == {"status": "forbidden"}


def test_a_source_inside_the_allowlist_is_accepted(serve: Any) -> None:
    base = serve(allowed_networks=("127.0.0.0/8",))

    assert httpx.post(f"{base}/webhook/{TOKEN}", content=BODY).status_code == 200


def test_forwarded_for_is_ignored_when_the_peer_is_not_a_trusted_proxy(serve: Any) -> None:
    base = serve(allowed_networks=("192.0.2.0/24",))

    response = httpx.post(
        f"{base}/webhook/{TOKEN}", content=BODY, headers={"x-forwarded-for": "192.0.2.10"}
    )

    assert response.status_code == 403


def test_forwarded_for_is_believed_from_a_trusted_proxy(serve: Any) -> None:
    base = serve(allowed_networks=("192.0.2.0/24",), trusted_proxies=("127.0.0.1/32",))
    url = f"{base}/webhook/{TOKEN}"

    allowed = httpx.post(url, content=BODY, headers={"x-forwarded-for": "192.0.2.10"})
    spoofed = httpx.post(url, content=BODY, headers={"x-forwarded-for": "192.0.2.10, 198.51.100.1"})

    assert allowed.status_code == 200
    assert spoofed.status_code == 403


def test_with_allowed_hosts_another_host_header_is_refused_but_health_answers_any(
    config: ReceiverConfig, make_client: Any, queue: QueueReader
) -> None:
    client = make_client(config, allowed_hosts=("hooks.example.com", "*.qlara.example"))

    def post(host: str) -> int:
        answer = client.post(f"/webhook/{TOKEN}", content=BODY, headers={"host": host})
        return int(answer.status_code)

    assert post("hooks.example.com") == 200
    assert post("a.qlara.example") == 200
    assert post("evil.example.net") == 400
    refused = client.post(f"/webhook/{TOKEN}", content=BODY, headers={"host": "evil.example"})
    assert refused.json() == {"message": "invalid host header"}
    assert post("127.0.0.1:8000") == 400
    assert client.get("/healthz", headers={"host": "10.0.0.7:8000"}).status_code == 200
    assert client.get("/readyz", headers={"host": "10.0.0.7:8000"}).status_code == 200
    assert len(queue) == 2


def test_a_flood_of_wrong_tokens_is_limited_and_the_right_token_never_is(
    client: TestClient[Any], queue: QueueReader, config: ReceiverConfig
) -> None:
    from receiver.throttle import BURST

    wrong = [client.post("/webhook/not-the-token", content=BODY) for _ in range(BURST + 5)]

    assert [r.status_code for r in wrong] == [401] * BURST + [429] * 5
    assert wrong[-1].json()["status"] == "rate_limited"
    assert int(wrong[-1].headers["retry-after"]) >= 1
    # the same client with the right token is answered as ever
    assert client.post(f"/webhook/{TOKEN}", content=BODY).status_code == 200
    assert len(queue) == 1
    outcomes = client.app.state.outcomes
    assert (outcomes["unauthorized"], outcomes["rate_limited"], outcomes["accepted"]) == (
        BURST,
        5,
        1,
    )
