"""Fixed-rate pipeline benchmark: time from the 200 to visible in the read API, and memory.

    .venv/bin/python bench/visible.py                                    # 1,000/s, 30 s
    RATE=2500 DURATION=400 DBS=sqlite .venv/bin/python bench/visible.py  # 1M events: RSS flat?

For each database in DBS: a fresh private redis-server (AOF, REDIS_APPENDFSYNC), an empty ledger
(an SQLite file, or a throwaway PostgreSQL database on 127.0.0.1:5432), `qlara-sidecar receiver
--processes PROCESSES` and `qlara-sidecar worker --processes WORKERS` (WORKER_THREADS threads).
`bench/loadgen.py rate` then POSTs RATE single-event requests per second for DURATION seconds
(open loop, each a new message), and the driver waits until the read API
(`GET /v1/stats/webhook`) shows every acknowledged event.

- **Visibility**: for every receipt, the ledger keeps `received_at` (taken by the receiver when
  it accepted the request, before the 200 is sent) and `recorded_at` (taken by the worker in the
  transaction that recorded it, just before its commit). `recorded_at - received_at` is the
  time from acceptance to the transaction; the commit itself (an fsync, a few ms) comes on top
  and the time between acceptance and the 200 (the ack, under a millisecond to a few) is
  included, so the figure is close to "200 -> visible". Quoted: p50, p99, max.
- **Backlog**: the receipts not yet recorded, sampled every second (from the stats API).
- **Memory**: the RSS of every receiver, worker and Redis process, sampled every SAMPLE_S
  seconds, with the events recorded at that moment. The summary compares each process's RSS
  once WARM_EVENTS events are recorded with its RSS at the end.

| knob | default |
|---|---|
| `DBS` | `sqlite postgres` |
| `RATE`, `DURATION` | `1000` requests/s, `30` s |
| `PROCESSES`, `WORKERS`, `WORKER_THREADS` | CPUs, the sidecar's (1 SQLite, 2 PostgreSQL), `64` |
| `CONNECTIONS` | `64` (loadgen's connection bound) |
| `REDIS_APPENDFSYNC` | `always` |
| `SAMPLE_S`, `WARM_EVENTS` | `2`, `100000` (or a tenth of the run when smaller) |
| `OUT` | `bench/out/visible-<time>` |
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from common import (
    BENCH,
    ROOT,
    Procs,
    RedisServer,
    env_int,
    env_str,
    free_port,
    get_json,
    log,
    machine_facts,
    rmtree,
    rss_kib,
    tmpdir,
    tree_pids,
    wait_http,
)
from sqlalchemy import create_engine, text

SIDECAR = ROOT / ".venv" / "bin" / "qlara-sidecar"
WEBHOOK_TOKEN = "bench-webhook-token-0123456789abcdef"  # noqa: S105 - a throwaway local token
READ_TOKEN = "bench-read-token-0123456789abcdef"  # noqa: S105


class Settings:
    def __init__(self) -> None:
        self.dbs = env_str("DBS", "sqlite postgres").split()
        self.rate = env_int("RATE", 1000)
        self.duration = env_int("DURATION", 30)
        self.processes = env_int("PROCESSES", os.cpu_count() or 1)
        self.workers = env_int("WORKERS", 0)  # 0: the sidecar's default
        self.worker_threads = env_str("WORKER_THREADS", "")  # empty: the sidecar's default
        self.connections = env_int("CONNECTIONS", 64)
        self.fsync = env_str("REDIS_APPENDFSYNC", "always")
        self.sample_s = float(env_str("SAMPLE_S", "2"))
        total = self.rate * self.duration
        self.warm_events = env_int("WARM_EVENTS", min(100_000, max(total // 10, 1)))
        self.pg_admin = env_str("PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
        default_out = BENCH / "out" / f"visible-{time.strftime('%Y%m%d-%H%M%S')}"
        self.out = Path(env_str("OUT", str(default_out))).resolve()


class Sampler(threading.Thread):
    """Samples RSS per process and the recorded-events count until stopped."""

    def __init__(self, roots: dict[str, int], stats_url: str, every_s: float) -> None:
        super().__init__(daemon=True)
        self.roots, self.stats_url, self.every_s = roots, stats_url, every_s
        self.samples: list[dict[str, Any]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        t0 = time.time()
        while not self.stop.is_set():
            try:
                stats = get_json(self.stats_url, READ_TOKEN)
                recorded = stats["eventsTotal"] + stats["duplicatesTotal"]
            except Exception:
                recorded = None
            rss: dict[str, int] = {}
            for role, root in self.roots.items():
                for pid in sorted(tree_pids(root)):
                    kib = rss_kib(pid)
                    if kib is not None:
                        rss[f"{role}:{pid}"] = kib
            self.samples.append(
                {"t": round(time.time() - t0, 2), "recorded": recorded, "rss_kib": rss}
            )
            self.stop.wait(self.every_s)


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def visibility_ms(db_url: str) -> list[float]:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT received_at, recorded_at FROM receipts")).all()
    finally:
        engine.dispose()
    out = []
    for received, recorded in rows:
        if isinstance(received, str):  # SQLite keeps naive UTC text
            from datetime import datetime

            received, recorded = datetime.fromisoformat(received), datetime.fromisoformat(recorded)
        out.append((recorded - received).total_seconds() * 1000)
    return out


def one_run(s: Settings, procs: Procs, db: str) -> dict[str, Any]:
    work = tmpdir(f"qlara-visible-{db}-")
    redis_srv = RedisServer(procs, work / "redis", s.fsync)
    port = free_port()
    pg_db = None
    if db == "sqlite":
        db_url = f"sqlite:///{work}/ledger.db"
    else:
        pg_db = f"qlara_bench_{secrets.token_hex(4)}"
        subprocess.run(["psql", s.pg_admin, "-Xqc", f"CREATE DATABASE {pg_db}"], check=True)
        db_url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{pg_db}"
    receiver = worker = None
    sampler: Sampler | None = None
    try:
        redis_srv.start()
        env = {
            "QLARA_SIDECAR_REDIS_URL": redis_srv.url,
            "QLARA_SIDECAR_DATABASE_URL": db_url,
            "QLARA_SIDECAR_WEBHOOK_TOKEN": WEBHOOK_TOKEN,
            "QLARA_SIDECAR_READ_TOKEN": READ_TOKEN,
            "QLARA_SIDECAR_DATA_DIR": str(work / "data"),
            "QLARA_SIDECAR_PORT": str(port),
            "QLARA_SIDECAR_LOG_LEVEL": "warning",
        }
        if s.worker_threads:
            env["QLARA_SIDECAR_WORKER_THREADS"] = s.worker_threads
        if procs.start([SIDECAR, "migrate"], log_path=work / "m.log", env=env, cwd=ROOT).wait(120):
            raise RuntimeError("migrate failed")
        receiver = procs.start(
            [SIDECAR, "receiver", "--processes", str(s.processes)],
            log_path=work / "receiver.log",
            env=env,
            cwd=ROOT,
        )
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/readyz", ok={200}, timeout=60)
        worker = procs.start(
            [SIDECAR, "worker", *(["--processes", str(s.workers)] if s.workers else [])],
            log_path=work / "worker.log",
            env=env,
            cwd=ROOT,
        )
        time.sleep(3.0)  # workers connected before the load starts
        stats_url = f"{base}/v1/stats/webhook"
        roots = {"receiver": receiver.pid, "worker": worker.pid, "redis": redis_srv.proc.pid}  # type: ignore[union-attr]
        sampler = Sampler(roots, stats_url, s.sample_s)
        sampler.start()
        out = s.out / f"{db}.rate.json"
        t0 = time.time()
        with out.open("w") as fh:
            subprocess.run(
                [
                    sys.executable,
                    BENCH / "loadgen.py",
                    "rate",
                    f"{base}/webhook/{WEBHOOK_TOKEN}",
                    "--rate",
                    str(s.rate),
                    "--duration",
                    str(s.duration),
                    "--connections",
                    str(s.connections),
                ],
                stdout=fh,
                check=True,
                timeout=s.duration * 3 + 60,
            )
        t_post = time.time() - t0
        sent = json.loads(out.read_text().strip().splitlines()[-1])
        ok = sent["ok_200"]
        deadline = time.time() + max(120, s.duration * 2)
        stats: dict[str, Any] = {}
        while time.time() < deadline:
            stats = get_json(stats_url, READ_TOKEN)
            if stats["eventsTotal"] + stats["duplicatesTotal"] >= ok:
                break
            time.sleep(0.2)
        drained_after_s = time.time() - t0 - t_post
        sampler.stop.set()
        sampler.join()
        lat = visibility_ms(db_url)
        (s.out / f"{db}.samples.json").write_text(json.dumps(sampler.samples))
        row = {
            "db": db,
            "rate": s.rate,
            "duration_s": s.duration,
            "sent": sent["requests"],
            "ok_200": ok,
            "ack_p50_ms": round(sent["p50_ms"], 2) if sent.get("p50_ms") else None,
            "ack_p99_ms": round(sent["p99_ms"], 2) if sent.get("p99_ms") else None,
            "recorded": stats.get("eventsTotal", 0) + stats.get("duplicatesTotal", 0),
            "drained_after_last_post_s": round(drained_after_s, 2),
            "visible_p50_ms": round(pct(lat, 0.50) or 0, 1),
            "visible_p99_ms": round(pct(lat, 0.99) or 0, 1),
            "visible_max_ms": round(max(lat) if lat else 0, 1),
            "receipts": len(lat),
            "memory": memory_summary(sampler.samples, s.warm_events),
        }
        return row
    finally:
        if sampler is not None:
            sampler.stop.set()
        procs.stop(worker)
        procs.stop(receiver)
        redis_srv.stop()
        for f in (work / "worker.log", work / "receiver.log"):
            if f.exists():
                (s.out / f"{db}.{f.name}").write_bytes(f.read_bytes()[-200_000:])
        if pg_db:
            subprocess.run(
                ["psql", s.pg_admin, "-Xqc", f"DROP DATABASE IF EXISTS {pg_db} WITH (FORCE)"],
                check=False,
            )
        rmtree(work)


def memory_summary(samples: list[dict[str, Any]], warm_events: int) -> dict[str, Any]:
    """Each process's RSS at the first sample with ``warm_events`` recorded, and at the end."""
    warm = next(
        (x for x in samples if x["recorded"] is not None and x["recorded"] >= warm_events), None
    )
    last = samples[-1] if samples else None
    if warm is None or last is None:
        return {}
    out: dict[str, Any] = {"warm_recorded": warm["recorded"], "end_recorded": last["recorded"]}
    for proc, kib in last["rss_kib"].items():
        before = warm["rss_kib"].get(proc)
        if before:
            out[proc] = {
                "warm_mib": round(before / 1024, 1),
                "end_mib": round(kib / 1024, 1),
                "change_pct": round(100 * (kib - before) / before, 1),
            }
    return out


def main() -> int:
    s = Settings()
    s.out.mkdir(parents=True, exist_ok=True)
    (s.out / "env.json").write_text(json.dumps({**machine_facts(), **vars(s)}, default=str))
    procs = Procs()
    rows = []
    try:
        for db in s.dbs:
            log(f"visible: {db} at {s.rate}/s for {s.duration} s")
            row = one_run(s, procs, db)
            log(json.dumps(row))
            rows.append(row)
    finally:
        procs.stop_all()
    (s.out / "rows.json").write_text(json.dumps(rows, indent=1))
    print(
        "| db | rate/s | s | 200s | recorded | ack p50 / p99 ms | visible p50 / p99 / max ms "
        "| drained after last POST s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['db']} | {r['rate']:,} | {r['duration_s']} | {r['ok_200']:,} "
            f"| {r['recorded']:,} "
            f"| {r['ack_p50_ms']} / {r['ack_p99_ms']} | {r['visible_p50_ms']} / "
            f"{r['visible_p99_ms']} / {r['visible_max_ms']} | {r['drained_after_last_post_s']} |"
        )
    for r in rows:
        mem = r["memory"]
        if not mem:
            continue
        print(
            f"\nRSS, {r['db']}: at {mem['warm_recorded']:,} events recorded "
            f"-> at {mem['end_recorded']:,}"
        )
        for proc, m in mem.items():
            if isinstance(m, dict):
                print(f"- {proc}: {m['warm_mib']} -> {m['end_mib']} MiB ({m['change_pct']:+}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
