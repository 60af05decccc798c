"""Run `qlara-sidecar up` as a real subprocess, and talk to it over HTTP."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

WEBHOOK_TOKEN = "e2e-webhook-token-0123456789abcdef"
READ_TOKEN = "e2e-read-token-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (httpx.HTTPError, OSError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def children_of(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of every live descendant of ``pid``, from /proc."""
    parents: dict[int, int] = {}
    cmdlines: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] == "Z":
            continue
        parents[int(entry.name)] = int(fields[1])
        cmdlines[int(entry.name)] = cmd.strip()
    found: list[tuple[int, str]] = []
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parents.items():
            if ppid == parent:
                found.append((child, cmdlines[child]))
                frontier.append(child)
    return found


@dataclass
class Sidecar:
    """A running `qlara-sidecar up` and what is needed to talk to it."""

    data_dir: Path
    env: dict[str, str]
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    extra_args: list[str] = field(default_factory=list)
    #: The CA file to trust when the sidecar serves HTTPS (None: plain HTTP).
    ca_file: str | None = None

    @property
    def base_url(self) -> str:
        scheme = "http" if self.ca_file is None else "https"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def verify(self) -> ssl.SSLContext | bool:
        return True if self.ca_file is None else ssl.create_default_context(cafile=self.ca_file)

    @property
    def webhook_url(self) -> str:
        return f"{self.base_url}/webhook/{WEBHOOK_TOKEN}"

    def start(self) -> Sidecar:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(Path(sys.executable).with_name("qlara-sidecar")), "up", *self.extra_args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        wait_for(self._ready, timeout=60, what="the sidecar to answer /readyz")
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"qlara-sidecar up exited early:\n{self.log()}")
        return (
            httpx.get(f"{self.base_url}/readyz", timeout=2, verify=self.verify).status_code == 200
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def read(self, path: str, **params: Any) -> Any:
        response = httpx.get(
            f"{self.base_url}{path}",
            params=params,
            headers={"Authorization": f"Bearer {READ_TOKEN}"},
            timeout=10,
            verify=self.verify,
        )
        response.raise_for_status()
        return response.json()

    def children(self, *needles: str) -> list[int]:
        assert self.process is not None
        return [pid for pid, cmd in children_of(self.process.pid) if all(n in cmd for n in needles)]

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM and wait; return the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                for pid, _ in children_of(self.process.pid):
                    os.kill(pid, signal.SIGKILL)
                self.process.kill()
                self.process.wait()
                raise
        return int(self.process.returncode)


def sidecar_env(data_dir: Path, port: int, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QLARA_SIDECAR_")}
    env.update(
        QLARA_SIDECAR_DATA_DIR=str(data_dir),
        QLARA_SIDECAR_PORT=str(port),
        QLARA_SIDECAR_WEBHOOK_TOKEN=WEBHOOK_TOKEN,
        QLARA_SIDECAR_READ_TOKEN=READ_TOKEN,
        QLARA_SIDECAR_WORKERS="2",
        QLARA_SIDECAR_RECEIVER_PROCESSES="1",
        QLARA_SIDECAR_LOG_FORMAT="json",
        QLARA_SIDECAR_REDIS_PORT=str(free_port()),
        # No explorer: these tests do not look at it, and several run at once.
        QLARA_SIDECAR_DASHBOARD_PORT="0",
    )
    env.update({f"QLARA_SIDECAR_{k.upper()}": v for k, v in settings.items()})
    return env


@dataclass
class PostResult:
    """How each body was answered (status codes in posting order)."""

    statuses: list[int]
    bodies: list[bytes]

    def ok(self) -> list[bytes]:
        return [b for b, s in zip(self.bodies, self.statuses, strict=True) if s == 200]


async def _post_all(
    url: str, bodies: Iterable[bytes], concurrency: int, retry_503: bool
) -> list[int]:
    bodies = list(bodies)
    statuses = [0] * len(bodies)
    semaphore = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:

        async def one(i: int, body: bytes) -> None:
            async with semaphore:
                for _ in range(50):
                    try:
                        response = await client.post(
                            url, content=body, headers={"Content-Type": "application/json"}
                        )
                    except httpx.TransportError:
                        statuses[i] = -1  # no answer: not acknowledged, Qlara would retry
                        await asyncio.sleep(0.2)
                        continue
                    statuses[i] = response.status_code
                    if not (retry_503 and response.status_code == 503):
                        return
                    await asyncio.sleep(0.2)

        await asyncio.gather(*(one(i, b) for i, b in enumerate(bodies)))
    return statuses


def post_all(
    url: str, bodies: list[bytes], *, concurrency: int = 16, retry_503: bool = False
) -> PostResult:
    """POST every body (``concurrency`` at a time) and keep each answer's status code."""
    return PostResult(asyncio.run(_post_all(url, bodies, concurrency, retry_503)), bodies)
