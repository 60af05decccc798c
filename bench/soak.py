"""Soak: `qlara-sidecar up` under realistic traffic for a long run, the broker restarted every
few minutes, and whether anything is lost or grows.

    .venv/bin/python bench/soak.py                          # 30 min at 300 events/s
    MINUTES=3 RESTART_EVERY=60 .venv/bin/python bench/soak.py   # a short smoke run

It starts `up` on its embedded defaults (SQLite, the embedded Redis with AOF, fsync always)
in a fresh data directory and `qlara-sidecar simulate` against it (every shape, 5%
duplicates, 5% reordered), SIGKILLs the embedded Redis every RESTART_EVERY seconds (the
supervisor starts it again; the receiver spools meanwhile), and samples every SAMPLE_EVERY
seconds: RSS and open file descriptors of every process of `up`, and Redis's used memory.
At the end it waits for the ledger to catch up and compares it with the simulator's exact
summary: unique events and duplicates acknowledged against the ledger's counts.

Prints one JSON document (the samples, the first and last quarter's medians, the verdict);
writes it to bench/out/soak-<time>.json too. Exit status 1 when an acknowledged event is
missing or counted twice.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import redis
from common import (
    BENCH,
    ROOT,
    Procs,
    env_float,
    env_int,
    free_port,
    get_json,
    log,
    machine_facts,
    rmtree,
    rss_kib,
    tmpdir,
    tree_pids,
)

MINUTES = env_float("MINUTES", 30.0)
RATE = env_float("RATE", 300.0)
RESTART_EVERY = env_float("RESTART_EVERY", 300.0)
SAMPLE_EVERY = env_float("SAMPLE_EVERY", 30.0)
CATCH_UP_S = env_int("CATCH_UP_S", 600)
QLARA = ROOT / ".venv" / "bin" / "qlara-sidecar"


def _fds(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def _name(pid: int) -> str:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [w.decode(errors="replace") for w in cmd if w]
    if any("multiprocessing" in w for w in words):
        return "receiver"  # uvicorn's worker processes, spawned by the receiver role
    for role in ("receiver", "worker", "valkey", "redis-server", "metrics", "dashboard"):
        if any(role in w for w in words):
            return role
    return "up" if any(w.endswith("qlara-sidecar") for w in words[:2]) else Path(words[0]).name


def _sample(up_pid: int, redis_url: str) -> dict[str, Any]:
    by_role: dict[str, dict[str, int]] = {}
    for pid in sorted(tree_pids(up_pid) | {up_pid}):
        rss, fds = rss_kib(pid), _fds(pid)
        if rss is None or fds is None:
            continue
        role = by_role.setdefault(_name(pid), {"processes": 0, "rss_kib": 0, "fds": 0})
        role["processes"] += 1
        role["rss_kib"] += rss
        role["fds"] += fds
    try:
        client = redis.Redis.from_url(redis_url, socket_timeout=2)
        memory = int(client.info("memory")["used_memory"])
        client.close()
    except redis.RedisError:
        memory = -1
    return {"t": round(time.monotonic(), 1), "roles": by_role, "redis_used_memory": memory}


def _quarter_medians(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Median RSS / fds per role and Redis memory over the first and the last quarter."""
    if len(samples) < 4:
        return {}
    quarter = max(1, len(samples) // 4)
    out: dict[str, Any] = {}
    for label, part in (("first", samples[:quarter]), ("last", samples[-quarter:])):
        roles = {r for s in part for r in s["roles"]}
        out[label] = {
            role: {
                key: statistics.median(s["roles"][role][key] for s in part if role in s["roles"])
                for key in ("rss_kib", "fds")
            }
            for role in sorted(roles)
        }
        mem = [s["redis_used_memory"] for s in part if s["redis_used_memory"] >= 0]
        out[label]["redis_used_memory"] = statistics.median(mem) if mem else None
    return out


def main() -> int:
    procs = Procs()
    data = tmpdir("qlara-soak-")
    port, started = free_port(), time.strftime("%Y%m%d-%H%M%S")
    env = {k: v for k, v in os.environ.items() if not k.startswith("QLARA_SIDECAR_")}
    env.update(
        QLARA_SIDECAR_DATA_DIR=str(data),
        QLARA_SIDECAR_PORT=str(port),
        QLARA_SIDECAR_DASHBOARD_PORT="0",
        QLARA_SIDECAR_LOG_FORMAT="json",
        QLARA_SIDECAR_LOG_LEVEL="warning",
    )
    out_dir = BENCH / "out"
    out_dir.mkdir(exist_ok=True)
    try:
        up = procs.start([str(QLARA), "up"], env=env, log_path=data / "up.log")
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if get_json(f"{base}/healthz").get("status") == "ok":
                    break
            except OSError:
                time.sleep(0.5)
        tokens = json.loads((data / "tokens.json").read_text())
        redis_url = (data / "redis" / "url").read_text().strip()
        summary_file = data / "summary.json"
        duration = MINUTES * 60
        log(f"soak: {MINUTES:g} min at {RATE:g} events/s, Redis killed every {RESTART_EVERY:g} s")
        sim = procs.start(
            [str(QLARA), "simulate", "--rate", str(RATE), "--duration", str(duration),
             "--duplicates", "0.05", "--reorder", "0.05", "--seed", "20261204",
             "--progress", "none", "--summary-file", str(summary_file)],
            env=env, log_path=data / "simulate.log",
        )  # fmt: skip
        samples: list[dict[str, Any]] = []
        t0 = time.monotonic()
        next_sample, next_kill, kills = t0, t0 + RESTART_EVERY, 0
        while sim.poll() is None:
            now = time.monotonic()
            if now >= next_sample:
                samples.append(_sample(up.pid, redis_url))
                next_sample += SAMPLE_EVERY
            if now >= next_kill and now < t0 + duration - 30:
                brokers = [p for p in tree_pids(up.pid) if _name(p) in ("valkey", "redis-server")]
                for pid in brokers:
                    os.kill(pid, signal.SIGKILL)
                kills += len(brokers)
                log(f"soak: broker killed at {now - t0:.0f} s")
                next_kill += RESTART_EVERY
            time.sleep(0.5)
        summary = json.loads(summary_file.read_text())
        log("soak: traffic done; waiting for the ledger to catch up")
        stats: dict[str, Any] = {}
        catch_up_started = time.monotonic()
        while time.monotonic() - catch_up_started < CATCH_UP_S:
            stats = get_json(f"{base}/v1/stats/webhook", tokens["read"])
            if (
                stats["eventsTotal"] >= summary["unique_events"]
                and stats["duplicatesTotal"] >= summary["duplicates"]
            ):
                break
            time.sleep(2)
        caught_up_s = time.monotonic() - catch_up_started
        samples.append(_sample(up.pid, redis_url))
        lost = summary["unique_events"] - stats.get("eventsTotal", 0)
        result = {
            "command": f"MINUTES={MINUTES:g} RATE={RATE:g} RESTART_EVERY={RESTART_EVERY:g} "
            ".venv/bin/python bench/soak.py",
            "started": started,
            "machine": machine_facts(),
            "broker_kills": kills,
            "acknowledged_requests": summary["acknowledged_requests"],
            "non_200": summary["non_200"],
            "given_up": summary["given_up"],
            "unique_events_acknowledged": summary["unique_events"],
            "duplicates_acknowledged": summary["duplicates"],
            "ledger_events": stats.get("eventsTotal"),
            "ledger_duplicates": stats.get("duplicatesTotal"),
            "lost": lost,
            "catch_up_s": round(caught_up_s, 1),
            "medians": _quarter_medians(samples),
            "samples": samples,
        }
        text = json.dumps(result, indent=2)
        print(text)
        (out_dir / f"soak-{started}.json").write_text(text)
        exact = lost == 0 and stats.get("duplicatesTotal") == summary["duplicates"]
        return 0 if exact else 1
    finally:
        procs.stop_all()
        rmtree(data)


if __name__ == "__main__":
    sys.exit(main())
