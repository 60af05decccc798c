"""Shared plumbing of the benchmark drivers: ports, processes, Redis, CPU accounting, medians.

Everything a driver starts goes through :class:`Procs`, which stops it by PID (SIGTERM, then
SIGKILL after a grace period) when the driver ends, on an exception, or on SIGINT/SIGTERM.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import redis

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, str(default)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def log(*parts: object) -> None:
    print(time.strftime("%H:%M:%S"), *parts, file=sys.stderr, flush=True)


class Procs:
    """Processes started by a driver, stopped by PID on exit."""

    def __init__(self) -> None:
        self.live: list[subprocess.Popen[bytes]] = []
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    def start(
        self,
        cmd: Sequence[str | Path],
        *,
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        with open(log_path, "ab") as fh:
            p = subprocess.Popen(
                [str(c) for c in cmd],
                stdout=fh,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                cwd=cwd,
                start_new_session=True,
            )
        self.live.append(p)
        return p

    def stop(self, p: subprocess.Popen[bytes] | None, grace: float = 15.0) -> None:
        """SIGTERM to the PID, wait up to ``grace`` s, then SIGKILL to the PID."""
        if p is None:
            return
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGTERM)
            try:
                p.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
                p.wait()
        # children left behind in the process's own session (same pgid = its pid)
        for pid in session_pids(p.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if p in self.live:
            self.live.remove(p)

    def kill9(self, p: subprocess.Popen[bytes]) -> None:
        p.kill()
        p.wait()
        if p in self.live:
            self.live.remove(p)

    def stop_all(self) -> None:
        for p in reversed(list(self.live)):
            self.stop(p, grace=10.0)


def rss_kib(pid: int) -> int | None:
    """The resident set size of ``pid`` in KiB, ``None`` once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name may hold spaces: split after the closing parenthesis
    return raw[raw.rindex(")") + 2 :].split()


def session_pids(sid: int) -> list[int]:
    """PIDs whose session id is ``sid`` (a process we started in its own session + children)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != sid:
            f = _stat_fields(int(entry))
            if f is not None and int(f[3]) == sid:
                out.append(int(entry))
    return out


def tree_pids(root_pid: int) -> set[int]:
    """A process, its descendants (by parent PID) and every process in its session."""
    parent: dict[int, int] = {}
    session: set[int] = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            f = _stat_fields(int(entry))
            if f is not None:
                parent[int(entry)] = int(f[1])
                if int(f[3]) == root_pid:
                    session.add(int(entry))
    found = {root_pid} | session
    frontier = list(found)
    while frontier:
        pid = frontier.pop()
        for child, ppid in parent.items():
            if ppid == pid and child not in found:
                found.add(child)
                frontier.append(child)
    return found


def parent_pid(pid: int) -> int | None:
    """The parent of ``pid``, ``None`` once it is gone."""
    f = _stat_fields(pid)
    return int(f[1]) if f is not None else None


def cpu_s(pids: Iterable[int]) -> float:
    """CPU seconds (user + system) of ``pids``, live ones only."""
    total = 0.0
    for pid in pids:
        f = _stat_fields(pid)
        if f is not None:
            total += (int(f[11]) + int(f[12])) / CLK_TCK
    return total


def pids_named(prefix: str) -> list[int]:
    """Every process whose command name starts with ``prefix``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            name = Path(f"/proc/{entry}/comm").read_text().strip()
        except OSError:
            continue
        if name.startswith(prefix):
            found.append(int(entry))
    return found


def tree_cpu_s(root_pid: int) -> float:
    """CPU seconds (user + system) of a process tree (see :func:`tree_pids`), live ones only."""
    return cpu_s(tree_pids(root_pid))


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    with open("/proc/stat") as fh:
        v = [int(x) for x in fh.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = v
    busy = user + nice + system + irq + softirq + steal
    return busy / CLK_TCK, (busy + idle + iowait) / CLK_TCK


def run_measured(
    cmd: Sequence[str | Path],
    out_path: Path,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
) -> tuple[int, float]:
    """Run a load generator; return (exit code, its own CPU seconds), output to ``out_path``."""
    with open(out_path, "wb") as fh:
        p = subprocess.Popen(
            [str(c) for c in cmd],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(p.pid, os.WNOHANG)
            if pid:
                p.returncode = os.waitstatus_to_exitcode(status)
                return p.returncode, usage.ru_utime + usage.ru_stime
            if deadline is not None and time.monotonic() > deadline:
                p.kill()
            time.sleep(0.02)


class RedisServer:
    """A private redis-server on 127.0.0.1 with its own data dir and AOF."""

    def __init__(self, procs: Procs, data_dir: Path, appendfsync: str, port: int | None = None):
        self.procs, self.dir, self.fsync = procs, data_dir, appendfsync
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.dir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        cmd = [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(self.dir),
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            self.fsync,
            "--logfile",
            str(self.dir / "redis.log"),
        ]
        self.proc = self.procs.start(cmd, log_path=self.dir / "redis.stdout")
        for _ in range(300):
            with contextlib.suppress(redis.RedisError):
                if self.client().ping():
                    return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=10)

    def llen(self, key: str) -> int:
        return int(self.client().llen(key))  # type: ignore[arg-type]

    def restart_after_kill9(self) -> None:
        assert self.proc is not None
        self.procs.kill9(self.proc)
        self.start()

    def stop(self) -> None:
        self.procs.stop(self.proc)
        self.proc = None


def wait_http(
    url: str, ok: Iterable[int] | None, timeout: float = 30.0, headers: dict[str, str] | None = None
) -> None:
    """Poll ``url`` until it answers (with a status in ``ok``, or any status when None)."""
    deadline = time.monotonic() + timeout
    allowed = None if ok is None else set(ok)
    while time.monotonic() < deadline:
        req = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - local http
        try:
            with urllib.request.urlopen(req, timeout=2) as resp:  # noqa: S310
                if allowed is None or resp.status in allowed:
                    return
        except urllib.error.HTTPError as exc:
            if allowed is None or exc.code in allowed:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in {timeout:.0f}s")


def get_json(url: str, token: str | None = None) -> Any:
    import json

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    req = urllib.request.Request(url, headers=headers)  # noqa: S310 - local http
    with urllib.request.urlopen(req, timeout=5) as r:  # noqa: S310
        return json.loads(r.read())


def median(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def tmpdir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))


def rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def ours_code_env() -> dict[str, str]:
    """What our server processes get to run another checkout of ours: ``OURS_CODE`` (a
    directory holding one, e.g. ``git archive <commit> | tar -x -C /tmp/before``) put first
    on their ``PYTHONPATH``, to compare two versions alternated with the same driver."""
    code = os.environ.get("OURS_CODE", "")
    return {"PYTHONPATH": code} if code else {}


def require_peers_dir(peers_dir: Path, needed_for: str) -> Path:
    """``peers_dir``, or exit with one line saying how to point at the peers."""
    if not peers_dir.is_dir():
        raise SystemExit(
            f"peers directory {peers_dir} is missing ({needed_for}): "
            "set PEERS_DIR to where ../shared/peers is checked out"
        )
    return peers_dir


def versions(python: Path, packages: Sequence[str]) -> dict[str, str]:
    """The installed versions of ``packages`` in the interpreter ``python`` (none when it is
    not there: a run without the peers)."""
    if not python.exists():
        return {}
    code = (
        "import importlib.metadata as m, sys\n"
        "for p in sys.argv[1:]:\n"
        "    try: print(p, m.version(p))\n"
        "    except m.PackageNotFoundError: pass\n"
    )
    out = subprocess.run(
        [str(python), "-c", code, *packages], capture_output=True, text=True, check=False
    ).stdout
    return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)


def machine_facts() -> dict[str, str]:
    def sh(*cmd: str) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()
        except OSError:
            return "?"

    model = "?"
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "kernel": sh("uname", "-r"),
        "os": sh("sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"),
        "redis": sh("redis-server", "--version"),
        "wrk": sh("sh", "-c", "wrk -v 2>&1 | head -1"),
        "python": sys.version.split()[0],
    }


def wait_quiet(max_busy_pct: float, max_wait_s: float, window_s: float = 1.0) -> float:
    """Wait until the machine is at most ``max_busy_pct`` busy over ``window_s``.

    Other work on the box (not started by the benchmark) would be charged to the target, so
    each measured run waits for a quiet second first, at most ``max_wait_s``. Returns the
    busy percentage of the last window seen.
    """
    deadline = time.monotonic() + max_wait_s
    while True:
        b0, t0 = machine_cpu()
        time.sleep(window_s)
        b1, t1 = machine_cpu()
        pct = 100 * (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0
        if pct <= max_busy_pct or time.monotonic() > deadline:
            return round(pct, 1)
