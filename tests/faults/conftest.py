"""Faults between real processes: `qlara-sidecar up` on a Redis of the test's own (which the
test stalls, starves of memory or cuts off), bounded in count and time, loopback only."""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from qlara import parse_body
from tests.e2e.sidecar_process import PostResult, Sidecar, wait_for


class TcpProxy:
    """A TCP relay on 127.0.0.1 in a thread of its own; :meth:`cut` resets every connection
    it relays (as a flaky link or a restarted load balancer would), and new ones still
    pass."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.cuts = 0
        #: While set, every new connection is reset at once, as a server that is down.
        self.refusing = False
        self.refused = 0
        self._loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        #: Cleared: what clients send is read but held, never passed on (see :meth:`hold`).
        self._upstream_flowing = asyncio.Event()
        self._upstream_flowing.set()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tcp-proxy", daemon=True)

    def start(self) -> TcpProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def cut(self) -> None:
        """Reset every relayed connection now."""

        def reset() -> None:
            for writer in list(self._writers):
                with contextlib.suppress(Exception):
                    writer.transport.abort()
            self._writers.clear()
            self.cuts += 1

        self._loop.call_soon_threadsafe(reset)

    def hold(self) -> None:
        """From now on, pass nothing clients send on to the server (answers still come
        back); a :meth:`cut` while holding drops what was held, as if never sent."""
        self._loop.call_soon_threadsafe(self._upstream_flowing.clear)

    def release(self) -> None:
        """Pass on what clients send again."""
        self._loop.call_soon_threadsafe(self._upstream_flowing.set)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._relay, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()

    def refuse(self) -> None:
        """From now on, reset every new connection at once, and every relayed one now."""
        self.refusing = True
        self.cut()

    def admit(self) -> None:
        """Relay new connections again."""
        self.refusing = False

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self.refusing:
            self.refused += 1
            client_w.transport.abort()
            return
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_w.transport.abort()
            return
        self._writers.update((client_w, server_w))

        async def pipe(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: bool
        ) -> None:
            with contextlib.suppress(Exception):
                while data := await reader.read(65536):
                    if upstream:
                        await self._upstream_flowing.wait()
                    if writer.transport.is_closing():
                        break  # cut while held: what was held is dropped
                    writer.write(data)
                    await writer.drain()
            with contextlib.suppress(Exception):
                writer.transport.abort()

        await asyncio.gather(pipe(client_r, server_w, True), pipe(server_r, client_w, False))
        self._writers.difference_update((client_w, server_w))


@pytest.fixture
def tcp_proxy() -> Iterator[Callable[[int], TcpProxy]]:
    made: list[TcpProxy] = []

    def make(target_port: int) -> TcpProxy:
        proxy = TcpProxy(target_port).start()
        made.append(proxy)
        return proxy

    yield make
    for proxy in made:
        proxy.stop()


def unique_events(acknowledged: list[bytes]) -> int:
    """Distinct events (by the ledger's key) among the bodies that got a 200."""
    return len(
        {
            (e.message_id, e.status, e.event_time, e.part)
            for body in acknowledged
            for e in parse_body(body).events
        }
    )


def assert_all_recorded_without_restarts(
    sidecar: Sidecar, results: list[PostResult], workers_before: list[int], timeout: float
) -> dict[str, Any]:
    """Every event of a 200 is in the ledger exactly once within ``timeout`` s, and no
    process of the sidecar was restarted to get there."""
    acknowledged = [body for result in results for body in result.ok()]
    expected = unique_events(acknowledged)
    stats: dict[str, Any] = wait_for(
        lambda: (s := sidecar.read("/v1/stats/webhook"))["eventsTotal"] >= expected and s,
        timeout=timeout,
        what=f"the {expected} acknowledged events in the ledger",
    )
    assert stats["eventsTotal"] == expected
    assert sidecar.children("worker") == workers_before
    log = sidecar.log()
    assert re.search(r"restarted \S+ after exit code", log) is None
    # Dramatiq's word for a message processed but left unacknowledged until a restart
    assert "processed again once this worker is restarted" not in log
    return stats
