"""Receiver benchmark: our `qlara-sidecar receiver` against the peers, in one run.

    .venv/bin/python bench/receiver.py

For each round (odd rounds in TARGETS order, even rounds reversed: ABC CBA), each target and
each concurrency in CONNS: a fresh private redis-server (AOF; `appendfsync always` for
ours_always, `everysec` for everything else), the target's server, a wrk warm-up, then a
measured wrk run (1 thread, bench/post.lua), CPU sampled around it; then the server is stopped
(SIGTERM), the queue is counted (LLEN), Redis gets kill -9, is restarted from its AOF and the
queue is counted again. Then, per round and target in RATE_TARGETS, an open-loop run at RATE
requests/s (bench/loadgen.py rate) for the acknowledgement latency.

Knobs (environment): TARGETS, CONNS, ROUNDS, DURATION, WARMUP, WRK_THREADS, PROCESSES, RATE,
RATE_DURATION, RATE_CONNS, RATE_TARGETS, PEERS_DIR, PEERS_VENV, OUT. See bench/README.md.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from common import (
    BENCH,
    ROOT,
    Procs,
    RedisServer,
    cpu_s,
    env_float,
    env_int,
    env_str,
    free_port,
    log,
    machine_cpu,
    machine_facts,
    median,
    ours_code_env,
    require_peers_dir,
    rmtree,
    run_measured,
    tmpdir,
    tree_cpu_s,
    tree_pids,
    versions,
    wait_http,
    wait_quiet,
)
from prometheus_client.parser import text_string_to_metric_families

from qlara.wire import QUEUE_NAME, decode_argument

#: ours_sends is ours_everysec serving POST /v1/sends (the application's sends) instead of
#: the webhook: same Redis settings, its own body (bench/post.lua, WRK_KIND=sends).
#: ours_granian is ours_everysec's app served by granian (a Rust HTTP server) instead of
#: uvicorn with sidecar/http_protocol.py: the same factory, settings and process count.
OURS = ("ours_always", "ours_everysec", "ours_sends", "ours_granian")
PEER_DIRS = {"flask_rq": "flask_rq", "celery": "celery_peer", "raw_limit": "raw"}
PEER_KEYS = {"flask_rq": "rq:queue:webhooks", "celery": "celery", "raw_limit": "webhooks"}
WEBHOOK_TOKEN = "bench-webhook-token-0123456789abcdef"  # noqa: S105 - a throwaway local token
READ_TOKEN = "bench-read-token-0123456789abcdef"  # noqa: S105
SEND_TOKEN = "bench-send-token-0123456789abcdef"  # noqa: S105

VENV = ROOT / ".venv"
SIDECAR = VENV / "bin" / "qlara-sidecar"


class Settings:
    def __init__(self) -> None:
        self.targets = env_str("TARGETS", "ours_always ours_everysec flask_rq raw_limit").split()
        self.conns = [int(c) for c in env_str("CONNS", "32 128").split()]
        self.rounds = env_int("ROUNDS", 2)
        self.duration = env_int("DURATION", 10)
        self.warmup = env_int("WARMUP", 2)
        self.wrk_threads = env_int("WRK_THREADS", 1)
        self.processes = env_int("PROCESSES", os.cpu_count() or 1)
        self.rate = env_float("RATE", 1000.0)
        self.rate_duration = env_int("RATE_DURATION", self.duration)
        self.rate_conns = env_int("RATE_CONNS", 64)
        self.rate_targets = env_str("RATE_TARGETS", " ".join(self.targets)).split()
        peers = Path(env_str("PEERS_DIR", str(ROOT.parent / "shared" / "peers")))
        self.peers_dir = peers.resolve()
        self.peers_venv = Path(env_str("PEERS_VENV", "/tmp/peers-venv"))
        default_out = BENCH / "out" / f"receiver-{time.strftime('%Y%m%d-%H%M%S')}"
        self.out = Path(env_str("OUT", str(default_out))).resolve()
        self.namespace = env_str("QLARA_SIDECAR_NAMESPACE", "qlara")
        self.quiet_pct = env_float("QUIET_PCT", 15.0)
        self.quiet_wait = env_float("QUIET_WAIT", 60.0)

    def as_dict(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in vars(self).items()}


def queued_requests(redis_srv: RedisServer, t: Target) -> int:
    """Requests waiting in the target's queue. A peer queues one job per request; ours queues
    one Dramatiq message per flush, whose argument is one receipt (a JSON object) or the JSON
    array of the receipts of several requests: each receipt is one request."""
    if t.name not in OURS:
        return redis_srv.llen(t.key)
    client = redis_srv.client()
    ids = client.lrange(t.key, 0, -1)
    total = 0
    for start in range(0, len(ids), 1000):
        for data in client.hmget(f"{t.key}.msgs", ids[start : start + 1000]):
            if data is None:
                continue
            total += len(decode_argument(json.loads(data)["args"][0]))
    return total


class Target:
    """One server under test: how to start it, where it listens, which Redis key it fills."""

    def __init__(self, name: str, s: Settings, procs: Procs, work: Path) -> None:
        self.name, self.s, self.procs, self.work = name, s, procs, work
        self.fsync = "always" if name == "ours_always" else "everysec"
        self.port = free_port()
        self.proc: Any = None
        self.data = work / "data"
        if name == "ours_sends":
            self.path = "/v1/sends"
            self.key = f"{s.namespace}:{QUEUE_NAME}"
        elif name in OURS:
            self.path = f"/webhook/{WEBHOOK_TOKEN}"
            self.key = f"{s.namespace}:{QUEUE_NAME}"
        elif name in PEER_DIRS:
            self.path = "/webhook"
            self.key = PEER_KEYS[name]
        else:
            raise SystemExit(f"unknown target {name}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def ours_env(self, redis_url: str) -> dict[str, str]:
        return {
            "QLARA_SIDECAR_REDIS_URL": redis_url,
            "QLARA_SIDECAR_DATABASE_URL": f"sqlite:///{self.work}/ledger.db",
            "QLARA_SIDECAR_WEBHOOK_TOKEN": WEBHOOK_TOKEN,
            "QLARA_SIDECAR_READ_TOKEN": READ_TOKEN,
            "QLARA_SIDECAR_SEND_TOKEN": SEND_TOKEN,
            "QLARA_SIDECAR_DATA_DIR": str(self.data),
            "QLARA_SIDECAR_HOST": "127.0.0.1",
            "QLARA_SIDECAR_PORT": str(self.port),
            "QLARA_SIDECAR_NAMESPACE": self.s.namespace,
            **ours_code_env(),
        }

    def start(self, redis_url: str) -> None:
        logf = self.work / "server.log"
        if self.name in OURS:
            env = self.ours_env(redis_url)
            migrate = self.procs.start([SIDECAR, "migrate"], log_path=logf, env=env, cwd=ROOT)
            if migrate.wait(120) != 0:
                raise RuntimeError(f"migrate failed: {logf.read_text()[-2000:]}")
            self.procs.stop(migrate)
            if self.name == "ours_granian":
                cmd = granian_cmd(self.s.processes, self.port)
                if self.s.processes > 1:
                    counted = self.work / "metrics"
                    counted.mkdir()
                    env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(counted)}
            else:
                cmd = [SIDECAR, "receiver", "--processes", str(self.s.processes)]
            self.proc = self.procs.start(cmd, log_path=logf, env=env, cwd=ROOT)
            wait_http(f"http://127.0.0.1:{self.port}/readyz", ok={200}, timeout=60)
        else:
            venv = self.s.peers_venv / "bin"
            if self.name in ("flask_rq", "celery"):
                cmd = [
                    venv / "gunicorn",
                    "--no-control-socket",
                    "-w",
                    "2",
                    "-k",
                    "sync",
                    "-b",
                    f"127.0.0.1:{self.port}",
                    "app:app",
                ]
            else:
                cmd = [
                    venv / "uvicorn",
                    "--workers",
                    "2",
                    "--loop",
                    "uvloop",
                    "--http",
                    "httptools",
                    "--no-access-log",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "app:app",
                ]
            env = {"REDIS_URL": redis_url, "USE_REDIS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
            cwd = self.s.peers_dir / PEER_DIRS[self.name]
            self.proc = self.procs.start(cmd, log_path=logf, env=env, cwd=cwd)
            wait_http(f"http://127.0.0.1:{self.port}/webhook", ok=None, timeout=60)
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited: {logf.read_text()[-2000:]}")
        time.sleep(1.0)  # every worker process up

    def stop(self) -> None:
        self.procs.stop(self.proc)
        self.proc = None

    def spooled(self) -> int:
        """Lines still waiting in our spool (accepted while Redis was slow or down)."""
        n = 0
        for seg in self.data.rglob("*.spool"):
            with open(seg, "rb") as fh:
                n += sum(1 for line in fh if line.startswith(b"+"))
        return n


WRK_RESULT = re.compile(r"^RESULT (.*)$", re.M)


def serving_pids(root_pid: int, port: int) -> list[int]:
    """The processes of the tree at ``root_pid`` that hold a socket of ``port`` (the ones that
    answer requests), from ``ss``; the root alone when ``ss`` tells nothing."""
    tree = set(tree_pids(root_pid))
    found = sorted(set(_socket_owners(f"sport = :{port}", listening=True)) & tree)
    return found or [root_pid]


def _socket_owners(where: str, *, listening: bool) -> list[int]:
    state = ["-l"] if listening else ["state", "established"]
    try:
        out = subprocess.run(
            ["ss", "-tnpH", *state, where], capture_output=True, text=True, check=False
        ).stdout
    except OSError:
        return []
    return [int(pid) for pid in re.findall(r"pid=(\d+)", out)]


class ConnectionSplit:
    """How the load generator's connections are spread over the server processes, read once
    ``after_s`` into the run (a thread): the count each of ``pids`` holds, in that order."""

    def __init__(self, port: int, pids: list[int], *, after_s: float) -> None:
        self._port, self._pids = port, pids
        self._counts: list[int] = []
        self._thread = threading.Thread(target=self._read, args=(after_s,), daemon=True)
        self._thread.start()

    def _read(self, after_s: float) -> None:
        time.sleep(after_s)
        owners = _socket_owners(f"sport = :{self._port}", listening=False)
        self._counts = [owners.count(pid) for pid in self._pids]

    def result(self) -> list[int]:
        self._thread.join()
        return self._counts


def granian_cmd(processes: int, port: int) -> list[Any]:
    """The receiver's ASGI factory under granian, set as uvicorn is set for us: uvloop,
    HTTP/1.1 only, no websockets, no access log."""
    return [
        VENV / "bin" / "granian",
        "--interface",
        "asgi",
        "--factory",
        "--loop",
        "uvloop",
        "--http",
        "1",
        "--no-ws",
        "--no-access-log",
        "--log-level",
        "warning",
        "--workers",
        str(processes),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "sidecar.asgi:create_app",
    ]


def wrk_cmd(s: Settings, conns: int, seconds: int, url: str) -> list[str]:
    return [
        "wrk",
        f"-t{s.wrk_threads}",
        f"-c{conns}",
        f"-d{seconds}s",
        "--timeout",
        "5s",
        "-s",
        str(BENCH / "post.lua"),
        url,
    ]


def parse_wrk(text: str) -> dict[str, int]:
    m = WRK_RESULT.search(text)
    if not m:
        raise RuntimeError(f"no RESULT line in wrk output:\n{text[-1500:]}")
    return {k: int(v) for k, v in (kv.split("=") for kv in m.group(1).split())}


def ack_buckets(t: Target) -> dict[float, float] | None:
    """Our receiver's own ``qlara_webhook_ack_seconds`` histogram (request start to response
    sent, summed over its processes): cumulative count by upper bound. None for a peer."""
    if t.name not in OURS:
        return None
    with urllib.request.urlopen(f"http://127.0.0.1:{t.port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "qlara_webhook_ack_seconds":
            continue
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                le = float(sample.labels["le"])
                buckets[le] = buckets.get(le, 0.0) + sample.value
    return buckets


def server_ack(before: dict[float, float] | None, after: dict[float, float] | None) -> dict:
    """From the histogram's growth over a run: the share of requests acknowledged within
    10 ms, and the p99 as Prometheus's histogram_quantile estimates it (linear within the
    bucket)."""
    if not before or not after:
        return {}
    bounds = sorted(after)
    cumulative = [after[b] - before.get(b, 0.0) for b in bounds]
    total = cumulative[-1]
    if total <= 0:
        return {}
    # As histogram_quantile: in the +Inf bucket, the highest finite bound.
    finite = [b for b in bounds if b != float("inf")]
    rank, p99, lower, below = 0.99 * total, finite[-1], 0.0, 0.0
    for bound, count in zip(bounds, cumulative, strict=True):
        if count >= rank:
            if bound != float("inf"):
                p99 = lower + (bound - lower) * ((rank - below) / max(count - below, 1e-9))
            break
        lower, below = bound, count
    within = max((c for b, c in zip(bounds, cumulative, strict=True) if b <= 0.01), default=0.0)
    return {
        "server_acks": int(total),
        "server_within_10ms_pct": round(100 * within / total, 2),
        "server_p99_ms": round(p99 * 1000, 2),
    }


def one_run(s: Settings, procs: Procs, rnd: int, name: str, kind: str, conns: int) -> dict:
    """kind: 'wrk' (closed loop at `conns`) or 'rate' (open loop at RATE req/s)."""
    work = tmpdir(f"qlara-bench-{name}-")
    t = Target(name, s, procs, work)
    redis_srv = RedisServer(procs, work / "redis", t.fsync)
    row: dict[str, Any] = {
        "round": rnd,
        "target": name,
        "kind": kind,
        "conns": conns,
        "appendfsync": t.fsync,
    }
    tag = f"r{rnd}-{name}-{kind}-c{conns}"
    try:
        redis_srv.start()
        t.start(redis_srv.url)
        env = {"WRK_PATH": t.path}
        if name == "ours_sends":
            env.update(WRK_KIND="sends", WRK_AUTH=f"Bearer {SEND_TOKEN}")
        base = f"http://127.0.0.1:{t.port}/"
        if kind == "wrk":
            run_measured(wrk_cmd(s, conns, s.warmup, base), work / "warmup.txt", env=env)
        else:
            run_measured(
                [
                    sys.executable,
                    BENCH / "loadgen.py",
                    "rate",
                    t.url,
                    "--rate",
                    str(s.rate),
                    "--duration",
                    str(s.warmup),
                    "--connections",
                    str(s.rate_conns),
                ],
                work / "warmup.txt",
            )
        time.sleep(1.0)
        acks0 = ack_buckets(t) if kind == "rate" else None
        q0 = queued_requests(redis_srv, t)
        m0 = redis_srv.llen(t.key)
        row["idle_before_pct"] = wait_quiet(s.quiet_pct, s.quiet_wait)
        srv0, red0 = tree_cpu_s(t.proc.pid), tree_cpu_s(redis_srv.proc.pid)  # type: ignore[union-attr]
        b0, tot0 = machine_cpu()
        out = s.out / f"{tag}.txt"
        servers = serving_pids(t.proc.pid, t.port)  # type: ignore[union-attr]
        per0 = [cpu_s([pid]) for pid in servers]
        if kind == "wrk":
            split = ConnectionSplit(t.port, servers, after_s=min(2.0, s.duration / 2))
            rc, gen_cpu = run_measured(
                wrk_cmd(s, conns, s.duration, base), out, env=env, timeout=s.duration + 30
            )
            row["conns_per_process"] = split.result()
            res = parse_wrk(out.read_text())
            dur = res["duration_us"] / 1e6
            requests = res["requests"]
            sock = res["connect"] + res["read"] + res["write"]
            row.update(
                requests=requests,
                ok_200=requests - res["non2xx"],
                non2xx=res["non2xx"],
                sock_errors=sock,
                timeouts=res["timeout"],
                p50_ms=res["p50_us"] / 1000,
                p99_ms=res["p99_us"] / 1000,
                max_ms=res["max_us"] / 1000,
            )
        else:
            rc, gen_cpu = run_measured(
                [
                    sys.executable,
                    BENCH / "loadgen.py",
                    "rate",
                    t.url,
                    "--rate",
                    str(s.rate),
                    "--duration",
                    str(s.rate_duration),
                    "--connections",
                    str(s.rate_conns),
                ],
                out,
                timeout=s.rate_duration + 30,
            )
            res = json.loads(out.read_text().strip().splitlines()[-1])
            dur = float(s.rate_duration)
            requests = res["requests"]
            st = res["statuses"]
            errors = sum(v for k, v in st.items() if k != "200")
            row.update(
                requests=requests,
                ok_200=res["ok_200"],
                non2xx=errors,
                sock_errors=0,
                timeouts=st.get("timeout", 0),
                p50_ms=res["p50_ms"],
                p90_ms=res["p90_ms"],
                p99_ms=res["p99_ms"],
                p999_ms=res["p999_ms"],
                max_ms=res["max_ms"],
                late_sends=res["late_sends"],
            )
            if acks0 is not None:
                row.update(server_ack(acks0, ack_buckets(t)))
        b1, tot1 = machine_cpu()
        srv1, red1 = tree_cpu_s(t.proc.pid), tree_cpu_s(redis_srv.proc.pid)  # type: ignore[union-attr]
        row["cpu_s_per_process"] = [
            round(cpu_s([pid]) - before, 2) for pid, before in zip(servers, per0, strict=True)
        ]
        busy, total = b1 - b0, tot1 - tot0
        time.sleep(1.0)  # in-flight requests finish
        t.stop()
        queued = queued_requests(redis_srv, t) - q0
        if name in OURS:
            # Receipts per queue message: how much each flush carried.
            row["receipts_per_message"] = round(queued / max(1, redis_srv.llen(t.key) - m0), 2)
        spooled = t.spooled() if name in OURS else 0
        time.sleep(1.5)  # more than one everysec tick
        before_kill = queued_requests(redis_srv, t)
        redis_srv.restart_after_kill9()
        after_kill = queued_requests(redis_srv, t)
        rewrites = (work / "redis" / "redis.log").read_text().count("Background append only")
        extra = queued + spooled - row["ok_200"]
        ok = (
            row["non2xx"] == 0
            and row["sock_errors"] == 0
            and 0 <= extra <= conns
            and after_kill == before_kill
            and rc == 0
        )
        req = max(requests, 1)
        row.update(
            rps=round(requests / dur, 1),
            queued=queued,
            spooled=spooled,
            extra_inflight=extra,
            durable_after_kill9=after_kill == before_kill,
            verdict="OK" if ok else "CHECK",
            busy_pct=round(100 * busy / total, 1) if total else None,
            gen_cpu_pct=round(100 * gen_cpu / dur, 1),
            cpu_us_per_req=round((busy - gen_cpu) / req * 1e6, 1),
            server_cpu_us_per_req=round((srv1 - srv0) / req * 1e6, 1),
            redis_cpu_us_per_req=round((red1 - red0) / req * 1e6, 1),
            aof_rewrites=rewrites,
            foreign_cpu_pct=round(100 * (busy - gen_cpu - (srv1 - srv0) - (red1 - red0)) / total, 1)
            if total
            else None,
        )
        return row
    finally:
        t.stop()
        redis_srv.stop()
        logs = s.out / "logs"
        logs.mkdir(exist_ok=True)
        for f, suffix in ((work / "server.log", "server"), (work / "redis" / "redis.log", "redis")):
            if f.exists():
                text = f.read_bytes()[-200_000:]
                (logs / f"{tag}.{suffix}.log").write_bytes(text)
        rmtree(work)


def fmt(v: float | None, nd: int = 0) -> str:
    if v is None:
        return "-"
    return f"{v:,.{nd}f}"


def summarize(rows: list[dict], s: Settings) -> str:
    lines = []
    wrk_rows = [r for r in rows if r["kind"] == "wrk"]
    med: dict[tuple[str, int], float | None] = {}
    for name in s.targets:
        for c in s.conns:
            med[(name, c)] = median(
                r["rps"] for r in wrk_rows if r["target"] == name and r["conns"] == c
            )
    lines.append(
        "| target | AOF fsync | conns | req/s per round | req/s median | x flask_rq | x raw_limit "
        "| p50 ms | p99 ms | errors | 200s | queued (+spooled) | durable after kill -9 | verdict "
        "| CPU us/req | server us/req | redis us/req | busy % | wrk CPU % | other CPU % |"
    )
    lines.append("|" + "---|" * 20)
    for c in s.conns:
        for name in s.targets:
            rs = [r for r in wrk_rows if r["target"] == name and r["conns"] == c]
            if not rs:
                continue
            m = med[(name, c)]
            fl, raw = med.get(("flask_rq", c)), med.get(("raw_limit", c))
            xf = f"{m / fl:.2f}" if m and fl else "-"
            xr = f"{m / raw:.2f}" if m and raw else "-"
            spooled = sum(r["spooled"] for r in rs)
            queued = f"{sum(r['queued'] for r in rs):,}" + (f" (+{spooled:,})" if spooled else "")
            lines.append(
                f"| {name} | {rs[0]['appendfsync']} | {c} | "
                + " / ".join(fmt(r["rps"]) for r in rs)
                + f" | **{fmt(m)}** | {xf} | {xr} | {fmt(median(r['p50_ms'] for r in rs), 2)} | "
                f"{fmt(median(r['p99_ms'] for r in rs), 2)} | "
                f"{sum(r['non2xx'] + r['sock_errors'] for r in rs)} | "
                f"{sum(r['ok_200'] for r in rs):,} | {queued} | "
                f"{'yes' if all(r['durable_after_kill9'] for r in rs) else 'NO'} | "
                f"{'OK' if all(r['verdict'] == 'OK' for r in rs) else 'CHECK'} | "
                f"{fmt(median(r['cpu_us_per_req'] for r in rs))} | "
                f"{fmt(median(r['server_cpu_us_per_req'] for r in rs))} | "
                f"{fmt(median(r['redis_cpu_us_per_req'] for r in rs))} | "
                f"{fmt(median(r['busy_pct'] for r in rs))} | "
                f"{fmt(median(r['gen_cpu_pct'] for r in rs))} | "
                f"{fmt(median(r['foreign_cpu_pct'] for r in rs))} |"
            )
    rate_rows = [r for r in rows if r["kind"] == "rate"]
    if rate_rows:
        lines += [
            "",
            f"Open loop at {s.rate:,.0f} requests/s for {s.rate_duration} s "
            f"(bench/loadgen.py rate, {s.rate_conns} connections at most; latency from the "
            "scheduled send time):",
            "",
            "| target | AOF fsync | p50 ms | p90 ms | p99 ms per round | p99 ms median | p99.9 ms "
            "| max ms | errors | 200s | queued (+spooled) | CPU us/req | server us/req "
            "| busy % | loadgen CPU % | other CPU % | server: acked within 10 ms % "
            "| server: p99 ms |",
            "|" + "---|" * 18,
        ]
        for name in s.rate_targets:
            rs = [r for r in rate_rows if r["target"] == name]
            if not rs:
                continue
            spooled = sum(r["spooled"] for r in rs)
            queued = f"{sum(r['queued'] for r in rs):,}" + (f" (+{spooled:,})" if spooled else "")
            lines.append(
                f"| {name} | {rs[0]['appendfsync']} | {fmt(median(r['p50_ms'] for r in rs), 2)} | "
                f"{fmt(median(r['p90_ms'] for r in rs), 2)} | "
                + " / ".join(fmt(r["p99_ms"], 2) for r in rs)
                + f" | **{fmt(median(r['p99_ms'] for r in rs), 2)}** | "
                f"{fmt(median(r['p999_ms'] for r in rs), 2)} | "
                f"{fmt(median(r['max_ms'] for r in rs), 1)} | "
                f"{sum(r['non2xx'] for r in rs)} | {sum(r['ok_200'] for r in rs):,} | {queued} | "
                f"{fmt(median(r['cpu_us_per_req'] for r in rs))} | "
                f"{fmt(median(r['server_cpu_us_per_req'] for r in rs))} | "
                f"{fmt(median(r['busy_pct'] for r in rs))} | "
                f"{fmt(median(r['gen_cpu_pct'] for r in rs))} | "
                f"{fmt(median(r['foreign_cpu_pct'] for r in rs))} | "
                + " / ".join(fmt(r.get("server_within_10ms_pct"), 2) for r in rs)
                + " | "
                + " / ".join(fmt(r.get("server_p99_ms"), 2) for r in rs)
                + " |"
            )
    return "\n".join(lines) + "\n"


def main() -> int:
    s = Settings()
    s.out.mkdir(parents=True, exist_ok=True)
    if not SIDECAR.exists():
        raise SystemExit(f"{SIDECAR} is missing: run `python3 dev.py setup` first")
    if "ours_granian" in s.targets and not (VENV / "bin" / "granian").exists():
        raise SystemExit(f"ours_granian needs granian: {VENV}/bin/pip install granian")
    peers = [t for t in s.targets if t in PEER_DIRS]
    if peers:
        require_peers_dir(s.peers_dir, f"targets {' '.join(peers)}")
    if peers and not (s.peers_venv / "bin" / "gunicorn").exists():
        raise SystemExit(
            f"peers venv {s.peers_venv} is missing: python3 -m venv {s.peers_venv} && "
            f"{s.peers_venv}/bin/pip install -r {s.peers_dir}/requirements.txt"
        )
    env = {
        "machine": machine_facts(),
        "settings": s.as_dict(),
        "ours": versions(
            VENV / "bin" / "python",
            [
                "qlara-sidecar",
                "litestar",
                "uvicorn",
                "uvloop",
                "httptools",
                "msgspec",
                "dramatiq",
                "redis",
                "hiredis",
            ],
        ),
        "peers": versions(
            s.peers_venv / "bin" / "python",
            [
                "flask",
                "gunicorn",
                "rq",
                "celery",
                "redis",
                "hiredis",
                "uvicorn",
                "uvloop",
                "httptools",
                "orjson",
            ],
        ),
        "command": " ".join(
            [
                f"{k}={os.environ[k]}"
                for k in (
                    "TARGETS",
                    "CONNS",
                    "ROUNDS",
                    "DURATION",
                    "WARMUP",
                    "RATE",
                    "RATE_TARGETS",
                    "PROCESSES",
                )
                if k in os.environ
            ]
            + ["python", "bench/receiver.py"]
        ),
    }
    (s.out / "env.json").write_text(json.dumps(env, indent=2))
    procs = Procs()
    rows: list[dict] = []
    runs_path = s.out / "runs.jsonl"
    try:
        for rnd in range(1, s.rounds + 1):
            order = s.targets if rnd % 2 else list(reversed(s.targets))
            for name in order:
                for c in s.conns:
                    log(f"round {rnd} {name} c{c}")
                    row = one_run(s, procs, rnd, name, "wrk", c)
                    rows.append(row)
                    with open(runs_path, "a") as fh:
                        fh.write(json.dumps(row) + "\n")
                    log(json.dumps(row))
            if s.rate > 0:
                for name in [t for t in order if t in s.rate_targets]:
                    log(f"round {rnd} {name} rate {s.rate:.0f}/s")
                    row = one_run(s, procs, rnd, name, "rate", s.rate_conns)
                    rows.append(row)
                    with open(runs_path, "a") as fh:
                        fh.write(json.dumps(row) + "\n")
                    log(json.dumps(row))
    finally:
        procs.stop_all()
        if rows:
            table = summarize(rows, s)
            (s.out / "summary.md").write_text(table)
            print(table)
            print(f"results in {s.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
