"""uvicorn's httptools protocol, with a response's headers and body sent in one system call.

uvicorn writes a response's status line and headers with one ``transport.write`` and its
body with another. uvloop sends each write at once, so every webhook answer cost two
``send`` calls and two TCP segments, and each loopback send runs the whole network stack and
wakes the reader. On the 2-core machine of ``bench/RESULTS.md`` the two writes were a quarter
of a receiver process's CPU (py-spy ``--native``), and sending both parts at once took the
receiver from 12,500 to 14,000 requests/s at 32 connections (Redis ``appendfsync always``).
uvicorn has no setting for this, so :class:`HttpToolsProtocol` gives uvicorn's own protocol
a transport that holds what the running callback writes and passes it to the real transport
in one ``writelines`` (one ``writev`` in uvloop) once the callback has finished.

Selected with uvicorn's ``http`` option (``--http sidecar.http_protocol:HttpToolsProtocol``);
:data:`sidecar.children.SERVER_OPTIONS` does it for every server the sidecar runs.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http import httptools_impl

#: Bytes a transport holds at most: past this a write goes out at once, so a large streamed
#: response meets the real transport's flow control (``pause_writing``) as it would without.
MOST_HELD = 64 * 1024


class CoalescingTransport:
    """Wraps a transport: the writes made during one event-loop callback reach it as one
    ``writelines`` call, scheduled with ``call_soon`` at the first of them, or at once when
    :data:`MOST_HELD` bytes are held.

    Order is kept: every write goes through the same buffer, and :meth:`close` and
    :meth:`write_eof` send what is held first (so does :class:`HttpToolsProtocol` before
    uvloop closes the transport on the client's EOF). :meth:`abort` drops it, as an abort
    drops the real transport's buffer. What is held when the real transport has started
    closing (the client left) is dropped, as the real transport drops writes then.
    Everything else is the wrapped transport's.
    """

    __slots__ = ("_held", "_held_size", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes | bytearray | memoryview] | None = None
        self._held_size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._held is None:
            self._held = [data]
            self._held_size = len(data)
            self._loop.call_soon(self.flush)
        else:
            self._held.append(data)
            self._held_size += len(data)
        if self._held_size >= MOST_HELD:
            self.flush()

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def flush(self) -> None:
        """Pass what is held to the real transport now (nothing if it is closing)."""
        held, self._held = self._held, None
        self._held_size = 0
        if held and not self._transport.is_closing():
            self._transport.writelines(held)

    def get_write_buffer_size(self) -> int:
        return self._held_size + self._transport.get_write_buffer_size()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._held_size = 0
        self._transport.abort()

    # Called for every request: forwarded without going through __getattr__.
    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HttpToolsProtocol(httptools_impl.HttpToolsProtocol):
    """uvicorn's httptools protocol on a :class:`CoalescingTransport`: a response's headers
    and body leave in one ``writev``."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._coalescing = CoalescingTransport(transport, self.loop)
        coalescing: Any = self._coalescing
        super().connection_made(coalescing)

    def eof_received(self) -> None:
        # uvloop closes the real transport itself once this returns: an answer already
        # written (a client that sent its request, then FIN) must leave first.
        self._coalescing.flush()
        super().eof_received()
