"""End-to-end pipeline benchmark: POST N events, time until the ledger shows them all.

    .venv/bin/python bench/pipeline.py

For each round and database in DBS (odd rounds in list order, even rounds reversed): a fresh
private redis-server (AOF, REDIS_APPENDFSYNC), an empty ledger (an SQLite file, or a throwaway
PostgreSQL database on 127.0.0.1:5432, user postgres, dropped afterwards), `qlara-sidecar
migrate`, `qlara-sidecar receiver --processes PROCESSES` and `qlara-sidecar worker --processes
WORKERS`. The workload is the pipeline peers' own (PEERS_DIR/pipeline/prefill.py `jobs(N)`):
M = N / 2.1 messages, each SENT then DELIVERED 100 requests later, plus 5% exact re-deliveries.

Modes (MODES):
- ``e2e``: receiver and workers both run; the N bodies are POSTed over CONNECTIONS keep-alive
  connections (bench/loadgen.py send) and the clock runs from the first POST until
  `GET /v1/stats/webhook` shows every unique event and every duplicate (events/s = N / time).
- ``drain``: the N bodies are POSTed with no worker running; then the workers start and the
  clock runs from their start until the ledger shows everything. This is what the pipeline
  peers' figures measure (their queue is pre-filled).

PEER_WORKERS (default empty; e.g. "rq_simple") also runs the peers' own pipeline_bench.sh
with the same N, one round, for a side-by-side in the same session. SPY=1 runs the workers
under py-spy (`pip install py-spy`) and keeps a speedscope profile per run in OUT.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import (
    BENCH,
    ROOT,
    Procs,
    RedisServer,
    cpu_s,
    env_int,
    env_str,
    free_port,
    get_json,
    log,
    machine_cpu,
    machine_facts,
    median,
    ours_code_env,
    pids_named,
    require_peers_dir,
    rmtree,
    run_measured,
    tmpdir,
    tree_cpu_s,
    versions,
    wait_http,
    wait_quiet,
)

from qlara.wire import QUEUE_NAME

VENV = ROOT / ".venv"
SIDECAR = VENV / "bin" / "qlara-sidecar"
WEBHOOK_TOKEN = "bench-webhook-token-0123456789abcdef"  # noqa: S105 - a throwaway local token
READ_TOKEN = "bench-read-token-0123456789abcdef"  # noqa: S105


class Settings:
    def __init__(self) -> None:
        self.n = env_int("N", 5250)
        self.dbs = env_str("DBS", "sqlite postgres").split()
        self.modes = env_str("MODES", "e2e drain").split()
        self.rounds = env_int("ROUNDS", 2)
        self.processes = env_int("PROCESSES", os.cpu_count() or 1)
        self.workers = env_int("WORKERS", 0)  # 0: the sidecar's default
        self.worker_threads = env_str("WORKER_THREADS", "")
        self.connections = env_int("CONNECTIONS", 32)
        self.timeout = env_int("TIMEOUT", 180)
        self.quiet_pct = float(env_str("QUIET_PCT", "15"))
        self.quiet_wait = float(env_str("QUIET_WAIT", "60"))
        self.fsync = env_str("REDIS_APPENDFSYNC", "always")
        self.pg_admin = env_str("PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
        self.peers_dir = Path(env_str("PEERS_DIR", str(ROOT.parent / "shared" / "peers")))
        self.peers_venv = Path(env_str("PEERS_VENV", "/tmp/peers-venv"))
        self.peer_workers = env_str("PEER_WORKERS", "")
        self.spy = env_str(
            "SPY", ""
        )  # "1": profile the workers with py-spy (speedscope file in OUT)
        default_out = BENCH / "out" / f"pipeline-{time.strftime('%Y%m%d-%H%M%S')}"
        self.out = Path(env_str("OUT", str(default_out))).resolve()

    def as_dict(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in vars(self).items()}


def workload(s: Settings) -> tuple[list[bytes], dict[str, int]]:
    """The pipeline peers' job list, as JSON request bodies."""
    require_peers_dir(s.peers_dir, "the workload is the pipeline peers' own")
    sys.path.insert(0, str(s.peers_dir / "pipeline"))
    try:
        from prefill import jobs  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    items, expect = jobs(s.n)
    return [json.dumps(p, separators=(",", ":")).encode() for p in items], expect


def spy(worker: subprocess.Popen[bytes], out: Path, log_path: Path) -> None:
    """Sample the worker processes while they hold the GIL (their CPU), with py-spy, for
    SPY_SECONDS, in the background."""
    seconds = env_int("SPY_SECONDS", 8)
    cmd = [VENV / "bin" / "py-spy", "record", "--pid", str(worker.pid), "--subprocesses"]
    cmd += ["--nonblocking", "--gil", "--rate", "50", "--duration", str(seconds)]
    with log_path.open("ab") as log_file:
        subprocess.Popen(
            [*cmd, "-f", "speedscope", "-o", str(out)], stdout=log_file, stderr=log_file
        )


def postgres_cpu_s() -> float:
    """CPU seconds of every PostgreSQL server process on this machine (the bench's database
    is the only busy one while it runs)."""
    return cpu_s(pids_named("postgres"))


def postgres_commits(admin_url: str, database: str | None) -> int:
    """Transactions committed so far in ``database`` (0 without one)."""
    if database is None:
        return 0
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = %s", (database,)
        ).fetchone()
    return int(row[0]) if row else 0


def psql(admin_url: str, sql: str) -> None:
    subprocess.run(
        ["psql", admin_url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
        check=True,
        capture_output=True,
    )


def one_run(
    s: Settings,
    procs: Procs,
    rnd: int,
    db: str,
    mode: str,
    bodies_file: Path,
    expect: dict[str, int],
) -> dict[str, Any]:
    work = tmpdir(f"qlara-pipe-{db}-")
    tag = f"r{rnd}-{mode}-{db}"
    redis_srv = RedisServer(procs, work / "redis", s.fsync)
    port = free_port()
    pg_db = None
    if db == "sqlite":
        db_url = f"sqlite:///{work}/ledger.db"
    else:
        pg_db = f"qlara_bench_{secrets.token_hex(4)}"
        psql(s.pg_admin, f"CREATE DATABASE {pg_db}")
        db_url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{pg_db}"
    receiver = worker = None
    row: dict[str, Any] = {
        "round": rnd,
        "db": db,
        "mode": mode,
        "n": s.n,
        "appendfsync": s.fsync,
        "workers": s.workers,
    }
    logf = work / "sidecar.log"
    try:
        redis_srv.start()
        env = {
            "QLARA_SIDECAR_REDIS_URL": redis_srv.url,
            "QLARA_SIDECAR_DATABASE_URL": db_url,
            "QLARA_SIDECAR_WEBHOOK_TOKEN": WEBHOOK_TOKEN,
            "QLARA_SIDECAR_READ_TOKEN": READ_TOKEN,
            "QLARA_SIDECAR_DATA_DIR": str(work / "data"),
            "QLARA_SIDECAR_HOST": "127.0.0.1",
            "QLARA_SIDECAR_PORT": str(port),
            **ours_code_env(),
        }
        if s.worker_threads:
            env["QLARA_SIDECAR_WORKER_THREADS"] = s.worker_threads
        m = procs.start([SIDECAR, "migrate"], log_path=logf, env=env, cwd=ROOT)
        if m.wait(120) != 0:
            raise RuntimeError(f"migrate failed: {logf.read_text()[-2000:]}")
        procs.stop(m)
        receiver = procs.start(
            [SIDECAR, "receiver", "--processes", str(s.processes)],
            log_path=work / "receiver.log",
            env=env,
            cwd=ROOT,
        )
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/readyz", ok={200}, timeout=60)
        time.sleep(1.0)
        worker_cmd = [SIDECAR, "worker", *(["--processes", str(s.workers)] if s.workers else [])]
        row["idle_before_pct"] = wait_quiet(s.quiet_pct, s.quiet_wait)
        stats_url = f"{base}/v1/stats/webhook"
        b0, tot0 = machine_cpu()
        red0 = tree_cpu_s(redis_srv.proc.pid)  # type: ignore[union-attr]
        rcv0 = tree_cpu_s(receiver.pid)
        if mode == "e2e":
            worker = procs.start(worker_cmd, log_path=work / "worker.log", env=env, cwd=ROOT)
            time.sleep(3.0)  # workers connected before the clock starts
            b0, tot0 = machine_cpu()
            red0 = tree_cpu_s(redis_srv.proc.pid)  # type: ignore[union-attr]
            rcv0 = tree_cpu_s(receiver.pid)
            wk0 = tree_cpu_s(worker.pid)
            pg0, commits0 = postgres_cpu_s(), postgres_commits(s.pg_admin, pg_db)
        t_post0 = time.time()
        send_out = s.out / f"{tag}.send.json"
        rc, gen_cpu = run_measured(
            [
                sys.executable,
                BENCH / "loadgen.py",
                "send",
                f"{base}/webhook/{WEBHOOK_TOKEN}",
                bodies_file,
                "--connections",
                str(s.connections),
            ],
            send_out,
            timeout=s.timeout,
        )
        sent = json.loads(send_out.read_text().strip().splitlines()[-1])
        t_post1 = time.time()
        row.update(
            post_s=round(t_post1 - t_post0, 2),
            post_rps=round(s.n / (t_post1 - t_post0)),
            ok_200=sent["ok_200"],
            post_errors=sent["requests"] - sent["ok_200"],
            post_p99_ms=sent["p99_ms"],
        )
        if mode == "drain":
            row["queued_before_workers"] = redis_srv.llen(f"qlara:{QUEUE_NAME}")
            b0, tot0 = machine_cpu()
            red0 = tree_cpu_s(redis_srv.proc.pid)  # type: ignore[union-attr]
            rcv0 = tree_cpu_s(receiver.pid)
            gen_cpu = 0.0
            wk0 = 0.0
            pg0, commits0 = postgres_cpu_s(), postgres_commits(s.pg_admin, pg_db)
            t0 = time.time()
            worker = procs.start(worker_cmd, log_path=work / "worker.log", env=env, cwd=ROOT)
        else:
            t0 = t_post0
        if s.spy:
            spy(worker, s.out / f"{tag}.worker.speedscope.json", work / "py-spy.log")
        want_events, want_dups = expect["events"], expect["duplicates"]
        first_row_at = None
        stats: dict[str, Any] = {}
        poll_cpu0 = time.process_time()
        deadline = time.time() + s.timeout
        while time.time() < deadline:
            stats = get_json(stats_url, READ_TOKEN)
            if first_row_at is None and stats["eventsTotal"] > 0:
                first_row_at = time.time()
            if stats["eventsTotal"] >= want_events and stats["duplicatesTotal"] >= want_dups:
                break
            time.sleep(0.05)
        t1 = time.time()
        poll_cpu = time.process_time() - poll_cpu0
        b1, tot1 = machine_cpu()
        red1 = tree_cpu_s(redis_srv.proc.pid)  # type: ignore[union-attr]
        rcv1 = tree_cpu_s(receiver.pid)
        wrk1 = tree_cpu_s(worker.pid)
        pg1, commits1 = postgres_cpu_s(), postgres_commits(s.pg_admin, pg_db)
        elapsed = t1 - t0
        time.sleep(0.5)
        final = get_json(stats_url, READ_TOKEN)
        left = redis_srv.llen(f"qlara:{QUEUE_NAME}")
        # Each queue message a worker takes is counted once (DeliveryLimit: INCR in a script;
        # INCRBY before it counted through a pipeline).
        commands = redis_srv.client().info("commandstats")
        taken = sum(commands.get(f"cmdstat_{c}", {}).get("calls", 0) for c in ("incr", "incrby"))
        timed_out = not (
            stats["eventsTotal"] >= want_events and stats["duplicatesTotal"] >= want_dups
        )
        done = stats["eventsTotal"] + stats["duplicatesTotal"]
        ok = (
            not timed_out
            and final["eventsTotal"] == want_events
            and final["duplicatesTotal"] == want_dups
            and final["pending"] == 0
            and left == 0
            and sent["ok_200"] == s.n
            and rc == 0
        )
        busy = b1 - b0
        row.update(
            seconds=round(elapsed, 2),
            events_per_s=round((s.n if not timed_out else done) / elapsed),
            timed_out=timed_out,
            # In e2e the poller starts after the last POST: the first row's time is not seen.
            startup_s=round(first_row_at - t0, 2) if first_row_at and mode == "drain" else None,
            lag_after_last_post_s=round(t1 - t_post1, 2) if mode == "e2e" else None,
            events_total=final["eventsTotal"],
            duplicates_total=final["duplicatesTotal"],
            pending=final["pending"],
            left_in_queue=left,
            queue_messages=taken,
            receipts_per_message=round(s.n / taken, 1) if taken else None,
            cpu_ms_per_event=round((busy - gen_cpu - poll_cpu) / s.n * 1e3, 3),
            worker_cpu_ms_per_event=round((wrk1 - wk0) / s.n * 1e3, 3),
            receiver_cpu_ms_per_event=round((rcv1 - rcv0) / s.n * 1e3, 3),
            redis_cpu_ms_per_event=round((red1 - red0) / s.n * 1e3, 3),
            postgres_cpu_ms_per_event=round((pg1 - pg0) / s.n * 1e3, 3) if pg_db else None,
            postgres_commits_per_s=round((commits1 - commits0) / elapsed) if pg_db else None,
            cores_busy=round(busy / elapsed, 2),
            busy_pct=round(100 * busy / (tot1 - tot0), 1) if tot1 > tot0 else None,
            verdict="OK" if ok else ("TIMEOUT" if timed_out else "CHECK"),
        )
        return row
    finally:
        procs.stop(worker)
        procs.stop(receiver)
        redis_srv.stop()
        logs = s.out / "logs"
        logs.mkdir(exist_ok=True)
        for f in (work / "worker.log", work / "receiver.log", logf):
            if f.exists():
                (logs / f"{tag}.{f.name}").write_bytes(f.read_bytes()[-200_000:])
        if pg_db:
            psql(s.pg_admin, f"DROP DATABASE IF EXISTS {pg_db} WITH (FORCE)")
        rmtree(work)


def summarize(rows: list[dict[str, Any]], s: Settings) -> str:
    def f(v: float | None, nd: int = 0) -> str:
        return "-" if v is None else f"{v:,.{nd}f}"

    lines = [
        f"N = {s.n:,} requests per run; receiver {s.processes} processes, worker {s.workers} "
        f"processes; Redis appendfsync {s.fsync}.",
        "",
        "| mode | db | events/s per round | events/s median | seconds | startup s | POST req/s "
        "| lag after last POST s | CPU ms/event, machine | worker ms/event | receiver ms/event "
        "| redis ms/event | postgres ms/event | postgres commits/s | cores busy | verdict |",
        "|" + "---|" * 16,
    ]
    for mode in s.modes:
        for db in s.dbs:
            rs = [r for r in rows if r["mode"] == mode and r["db"] == db]
            if not rs:
                continue
            lines.append(
                f"| {mode} | {db} | "
                + " / ".join(f(r["events_per_s"]) for r in rs)
                + f" | **{f(median(r['events_per_s'] for r in rs))}** | "
                f"{f(median(r['seconds'] for r in rs), 1)} | "
                f"{f(median(r['startup_s'] for r in rs), 2)} | "
                f"{f(median(r['post_rps'] for r in rs))} | "
                f"{f(median(r['lag_after_last_post_s'] for r in rs), 1)} | "
                f"{f(median(r['cpu_ms_per_event'] for r in rs), 3)} | "
                f"{f(median(r['worker_cpu_ms_per_event'] for r in rs), 3)} | "
                f"{f(median(r['receiver_cpu_ms_per_event'] for r in rs), 3)} | "
                f"{f(median(r['redis_cpu_ms_per_event'] for r in rs), 3)} | "
                f"{f(median(r.get('postgres_cpu_ms_per_event') for r in rs), 3)} | "
                f"{f(median(r.get('postgres_commits_per_s') for r in rs))} | "
                f"{f(median(r['cores_busy'] for r in rs), 2)} | "
                f"{', '.join(sorted({r['verdict'] for r in rs}))} |"
            )
    return "\n".join(lines) + "\n"


def run_peers(s: Settings, procs: Procs) -> None:
    script = s.peers_dir / "pipeline" / "pipeline_bench.sh"
    out = s.out / "peers"
    env = {
        "VENV": str(s.peers_venv),
        "OUT": str(out),
        "N": str(s.n),
        "ROUNDS": "1",
        "WORKERS": s.peer_workers,
        "DBS": " ".join(s.dbs),
    }
    log(f"peers: {s.peer_workers} via {script}")
    p = procs.start(["bash", script], log_path=s.out / "peers.log", env=env, cwd=script.parent)
    p.wait(s.timeout * 4)
    procs.stop(p)


def main() -> int:
    s = Settings()
    s.out.mkdir(parents=True, exist_ok=True)
    if not SIDECAR.exists():
        raise SystemExit(f"{SIDECAR} is missing: run `python3 dev.py setup` first")
    bodies, expect = workload(s)
    bodies_file = s.out / "bodies.jsonl"
    bodies_file.write_bytes(b"\n".join(bodies) + b"\n")
    env = {
        "machine": machine_facts(),
        "settings": s.as_dict(),
        "workload": expect,
        "ours": versions(
            VENV / "bin" / "python",
            [
                "qlara-sidecar",
                "litestar",
                "uvicorn",
                "dramatiq",
                "redis",
                "hiredis",
                "sqlalchemy",
                "psycopg",
                "psycopg-binary",
            ],
        ),
        "postgres": subprocess.run(
            ["psql", s.pg_admin, "-XAtc", "select version()"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip(),
    }
    (s.out / "env.json").write_text(json.dumps(env, indent=2))
    procs = Procs()
    rows: list[dict[str, Any]] = []
    try:
        combos = [(m, d) for m in s.modes for d in s.dbs]
        for rnd in range(1, s.rounds + 1):
            for mode, db in combos if rnd % 2 else list(reversed(combos)):
                log(f"round {rnd} {mode} {db}")
                row = one_run(s, procs, rnd, db, mode, bodies_file, expect)
                rows.append(row)
                with open(s.out / "runs.jsonl", "a") as fh:
                    fh.write(json.dumps(row) + "\n")
                log(json.dumps(row))
        if s.peer_workers:
            run_peers(s, procs)
    finally:
        procs.stop_all()
        bodies_file.unlink(missing_ok=True)
        if rows:
            table = summarize(rows, s)
            peers_summary = s.out / "peers" / "summary.md"
            if peers_summary.exists():
                table += (
                    "\nPeers, same session (pipeline_bench.sh):\n\n" + peers_summary.read_text()
                )
            (s.out / "summary.md").write_text(table)
            print(table)
            print(f"results in {s.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
