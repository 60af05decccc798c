"""Small HTTP/1.1 load clients for the benchmarks (standard library, uvloop when available).

    python bench/loadgen.py rate URL --rate 1000 --duration 10 [--connections 64]
    python bench/loadgen.py send URL BODIES_FILE [--connections 32]

``rate`` is an open-loop client: request ``i`` is due at ``start + i / rate``, whatever happened
to the earlier ones, and its latency is measured from that scheduled time to the last byte of
the answer. A slow answer therefore also delays the requests queued behind it, and they are
charged for it (no coordinated omission, as in wrk2). Each request carries the sample payload
with a unique ``messageId``. A request that waits for a free connection is charged for the wait;
the client never opens more than ``--connections`` connections (keep-alive).

``send`` POSTs every line of BODIES_FILE (one JSON body per line) in order, over
``--connections`` keep-alive connections, as fast as the server answers (closed loop).

Both print one JSON object on stdout: counts by status, errors, and latency percentiles in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from urllib.parse import urlsplit

#: High-resolution clock for every timestamp (uvloop's loop.time() has 1 ms resolution).
clock = time.perf_counter

BODY = (
    '{{"messageId":"msg_{run}_{n}","customerMessageId":"ref{n}","phoneNumber":"+393901234567",'
    '"status":"DELIVERED","timestamp":"2025-04-08T14:30:00Z","channel":"sms","error":null}}'
)


class Conn:
    """One keep-alive HTTP/1.1 connection that sends POSTs and reads the answers."""

    def __init__(self, host: str, port: int, path: str) -> None:
        self.host, self.port, self.path = host, port, path
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        ).encode()

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def post(self, body: bytes) -> int:
        if self.writer is None:
            await self.open()
        assert self.reader is not None
        assert self.writer is not None
        self.writer.write(self.head + str(len(body)).encode() + b"\r\n\r\n" + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        keep = True
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            lname = name.strip().lower()
            if lname == b"content-length":
                length = int(value)
            elif lname == b"connection" and value.strip().lower() == b"close":
                keep = False
        if length:
            await self.reader.readexactly(length)
        if not keep:
            self.close()
        return status


def _pct(sorted_ms: list[float], q: float) -> float | None:
    if not sorted_ms:
        return None
    return sorted_ms[min(len(sorted_ms) - 1, int(q * len(sorted_ms)))]


def _summary(latencies: list[float], statuses: Counter[str], extra: dict[str, object]) -> dict:
    lat = sorted(latencies)
    out: dict[str, object] = dict(extra)
    out.update(
        {
            "requests": sum(statuses.values()),
            "ok_200": statuses.get("200", 0),
            "statuses": dict(statuses),
            "p50_ms": _pct(lat, 0.50),
            "p90_ms": _pct(lat, 0.90),
            "p99_ms": _pct(lat, 0.99),
            "p999_ms": _pct(lat, 0.999),
            "max_ms": lat[-1] if lat else None,
        }
    )
    return out


async def _pool(url: str, connections: int) -> tuple[asyncio.Queue[Conn], list[Conn]]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path or "/"
    conns = [Conn(host, port, path) for _ in range(connections)]
    await asyncio.gather(*(c.open() for c in conns))
    pool: asyncio.Queue[Conn] = asyncio.Queue()
    for c in conns:
        pool.put_nowait(c)
    return pool, conns


async def _one(pool: asyncio.Queue[Conn], body: bytes, limit_s: float) -> str:
    conn = await pool.get()
    try:
        return str(await asyncio.wait_for(conn.post(body), limit_s))
    except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
        conn.close()
        return "timeout" if isinstance(exc, TimeoutError) else "error"
    finally:
        pool.put_nowait(conn)


async def run_rate(args: argparse.Namespace) -> dict:
    pool, conns = await _pool(args.url, args.connections)
    loop = asyncio.get_running_loop()
    run = f"{int(time.time() * 1000) % 10_000_000}"
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    late_sends = 0  # requests that left more than 1 ms after their scheduled time

    async def fire(n: int, due: float) -> None:
        nonlocal late_sends
        if clock() - due > 0.001:
            late_sends += 1
        status = await _one(pool, BODY.format(run=run, n=n).encode(), args.timeout)
        statuses[status] += 1
        if status.isdigit():
            latencies.append((clock() - due) * 1000)

    total = int(args.rate * args.duration)
    interval = 1.0 / args.rate
    tasks: set[asyncio.Task[None]] = set()
    start = clock() + 0.05
    for n in range(total):
        due = start + n * interval
        delay = due - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        task = loop.create_task(fire(n, due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks, timeout=args.timeout + 1)
    for c in conns:
        c.close()
    unfinished = total - sum(statuses.values())
    if unfinished:
        statuses["unfinished"] += unfinished
    return _summary(
        latencies,
        statuses,
        {
            "mode": "rate",
            "rate": args.rate,
            "duration_s": args.duration,
            "connections": args.connections,
            "late_sends": late_sends,
        },
    )


async def run_send(args: argparse.Namespace, bodies: list[bytes]) -> dict:
    pool, conns = await _pool(args.url, args.connections)
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    it = iter(bodies)

    async def lane() -> None:
        for body in it:
            t0 = clock()
            status = await _one(pool, body, args.timeout)
            statuses[status] += 1
            latencies.append((clock() - t0) * 1000)

    t0 = time.time()
    await asyncio.gather(*(lane() for _ in range(args.connections)))
    t1 = time.time()
    for c in conns:
        c.close()
    return _summary(
        latencies,
        statuses,
        {"mode": "send", "connections": args.connections, "start": t0, "end": t1},
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    rate = sub.add_parser("rate")
    rate.add_argument("url")
    rate.add_argument("--rate", type=float, default=1000.0)
    rate.add_argument("--duration", type=float, default=10.0)
    rate.add_argument("--connections", type=int, default=64)
    rate.add_argument("--timeout", type=float, default=5.0)
    send = sub.add_parser("send")
    send.add_argument("url")
    send.add_argument("bodies")
    send.add_argument("--connections", type=int, default=32)
    send.add_argument("--timeout", type=float, default=10.0)
    args = ap.parse_args()
    if args.mode == "rate":
        coro = run_rate(args)
    else:
        with open(args.bodies, "rb") as fh:
            bodies = [line.rstrip(b"\n") for line in fh if line.strip()]
        coro = run_send(args, bodies)
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(coro)
    else:
        result = uvloop.run(coro)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
