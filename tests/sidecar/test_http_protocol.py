"""The HTTP protocol every sidecar server runs: a response leaves in one write, and HTTP
behaves as uvicorn's own protocol does (keep-alive, pipelining, ``Connection: close``).

A real uvicorn server on loopback, in a thread; the transport under the protocol is
uvloop's own, seen through a counting wrapper."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from uvicorn.config import Config
from uvicorn.protocols.http import httptools_impl

from sidecar.children import SERVER_OPTIONS
from sidecar.http_protocol import MOST_HELD, CoalescingTransport, HttpToolsProtocol

BODY = b'{"status":"received"}'


class _CountingTransport:
    """Forwards everything to the real transport; counts the calls that send bytes."""

    def __init__(self, transport: asyncio.Transport, calls: list[int]) -> None:
        self._transport = transport
        self._calls = calls

    def write(self, data: bytes) -> None:
        self._calls.append(len(data))
        self._transport.write(data)

    def writelines(self, list_of_data: Any) -> None:
        chunks = list(list_of_data)
        self._calls.append(sum(len(chunk) for chunk in chunks))
        self._transport.writelines(chunks)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


SENDS: list[int] = []


def _counted(protocol: type[httptools_impl.HttpToolsProtocol]) -> type:
    """``protocol`` on uvloop's transport seen through a :class:`_CountingTransport`."""

    class Counted(protocol):  # type: ignore[valid-type,misc]
        def connection_made(self, transport: asyncio.Transport) -> None:
            counting: Any = _CountingTransport(transport, SENDS)
            super().connection_made(counting)

    return Counted


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers 200 with BODY, and with the request's body in an ``x-echo`` header."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    request = b""
    while True:
        message = await receive()
        request += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(BODY)),
        (b"x-echo", request),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BODY})


def _serve(protocol: type) -> Iterator[int]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    options = {**SERVER_OPTIONS, "http": protocol}
    server = uvicorn.Server(Config(app, lifespan="on", **options))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)
        listener.close()


@pytest.fixture
def port() -> Iterator[int]:
    yield from _serve(_counted(HttpToolsProtocol))


@pytest.fixture
def uvicorn_port() -> Iterator[int]:
    yield from _serve(_counted(httptools_impl.HttpToolsProtocol))


def _request(extra: bytes = b"", body: bytes = b'{"messageId":"m1"}') -> bytes:
    return (
        b"POST /webhook HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n%s\r\n%s" % (len(body), extra, body)
    )


def _read_responses(sock: socket.socket, count: int) -> list[bytes]:
    """``count`` whole responses (each ends with BODY), read until they are all in."""
    data = b""
    sock.settimeout(10)
    while data.count(BODY) < count:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return [part + BODY for part in data.split(BODY)[:-1]]


def test_each_response_is_one_write_on_a_kept_alive_connection(port: int) -> None:
    SENDS.clear()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for _ in range(3):
            sock.sendall(_request())
            (response,) = _read_responses(sock, 1)
            assert response.startswith(b"HTTP/1.1 200 OK\r\n")
            assert b"content-length: 21\r\n" in response
            assert response.endswith(b"\r\n\r\n" + BODY)

    # One call per response, carrying headers and body together
    assert len(SENDS) == 3
    assert all(size > len(BODY) for size in SENDS)


def test_uvicorn_alone_writes_each_response_twice(uvicorn_port: int) -> None:
    # What the protocol is for: the same exchange through uvicorn's own protocol
    SENDS.clear()
    with socket.create_connection(("127.0.0.1", uvicorn_port)) as sock:
        for _ in range(3):
            sock.sendall(_request())
            _read_responses(sock, 1)

    assert len(SENDS) == 6


def test_pipelined_requests_are_answered_in_order(port: int) -> None:
    bodies = [b'{"messageId":"m%d"}' % n for n in range(4)]
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"".join(_request(body=body) for body in bodies))
        responses = _read_responses(sock, 4)

    assert [r.split(b"x-echo: ", 1)[1].split(b"\r\n", 1)[0] for r in responses] == bodies
    assert all(r.startswith(b"HTTP/1.1 200 OK\r\n") for r in responses)


def test_a_client_that_half_closes_still_gets_its_answer(port: int) -> None:
    # A request, then FIN (as `nc -N` or an HTTP/1.0 tool does): the answer must still leave
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(_request())
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(10)
            data = b""
            while chunk := sock.recv(65536):
                data += chunk

        assert data.endswith(b"\r\n\r\n" + BODY)


def test_connection_close_sends_the_whole_response_before_closing(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(_request(b"connection: close\r\n"))
        sock.settimeout(10)
        data = b""
        while chunk := sock.recv(65536):  # until the server closes
            data += chunk

    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert data.endswith(b"\r\n\r\n" + BODY)


def test_the_sidecar_servers_use_this_protocol() -> None:
    config = Config(app, **SERVER_OPTIONS)
    config.load()

    assert config.http_protocol_class is HttpToolsProtocol


class _Recorder:
    """A transport's sending side, for the wrapper's own rules."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closed = False
        self.aborted = False

    def writelines(self, chunks: list[bytes]) -> None:
        self.sent.append(b"".join(chunks))

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return 0


def test_the_writes_of_one_callback_are_sent_together_after_it() -> None:
    async def scenario() -> list[Any]:
        real = _Recorder()
        transport = CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"head ")
        transport.write(b"body")
        seen: list[Any] = [list(real.sent), transport.get_write_buffer_size()]
        await asyncio.sleep(0)
        seen.append(list(real.sent))
        return seen

    during, size, after = asyncio.run(scenario())

    assert during == []
    assert size == 9
    assert after == [b"head body"]


def test_past_the_limit_writes_go_out_at_once() -> None:
    # A large streamed response must meet the real transport's flow control
    async def scenario() -> tuple[list[int], int]:
        real = _Recorder()
        transport = CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
        chunk = b"x" * (MOST_HELD // 4)
        for _ in range(10):
            transport.write(chunk)
        held = transport.get_write_buffer_size()
        return [len(sent) for sent in real.sent], held

    sent, held = asyncio.run(scenario())

    assert sent == [MOST_HELD, MOST_HELD]
    assert held == 2 * (MOST_HELD // 4)


def test_close_sends_what_is_held_and_abort_drops_it() -> None:
    async def scenario() -> tuple[_Recorder, _Recorder]:
        loop = asyncio.get_running_loop()
        closed, aborted = _Recorder(), _Recorder()
        for real in (closed, aborted):
            transport = CoalescingTransport(real, loop)  # type: ignore[arg-type]
            transport.write(b"last words")
            if real is closed:
                transport.close()
            else:
                transport.abort()
        await asyncio.sleep(0)  # the scheduled flush finds nothing more to send
        return closed, aborted

    closed, aborted = asyncio.run(scenario())

    assert closed.sent == [b"last words"]
    assert closed.closed
    assert aborted.sent == []
    assert aborted.aborted
