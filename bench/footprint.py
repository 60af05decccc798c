"""Memory of `qlara-sidecar up` per role, idle and under load, with and without the explorer.

    .venv/bin/python bench/footprint.py

For each configuration in CONFIGS (default "explorer bare compose": `up` with its explorer
on a free port, then with DASHBOARD_PORT=0, each on a fresh data directory and embedded
defaults (SQLite, the Redis `up` starts); then compose.yaml's services as it runs them, each
its own process tree: `receiver --processes 2`, `worker --processes 2` with its metrics
listener, `dashboard`, over a throwaway PostgreSQL database (POSTGRES_URL) and the machine's
Redis (REDIS_URL, a namespace of its own)). Idle: SETTLE seconds (default 15) after
/readyz answers. Loaded: the simulator posts RATE events a second (default 200) for LOAD
seconds (default 20), and, with the explorer, headless Chromium (Debian's `chromium`, when
installed) opens every page once; then the figures are read again.

Per process: RSS (what `ps` shows) and PSS (pages shared between processes split among
them; the sum of PSS is what the processes take together), from /proc/<pid>/smaps_rollup,
grouped by role from the command line. Printed as a table, and written to OUT/footprint.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import (
    BENCH,
    ROOT,
    Procs,
    env_int,
    env_str,
    free_port,
    log,
    parent_pid,
    rmtree,
    tmpdir,
    tree_pids,
    wait_http,
)

CONFIGS = env_str("CONFIGS", "explorer bare compose").split()
POSTGRES_URL = env_str("POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
SETTLE = env_int("SETTLE", 15)
RATE = env_int("RATE", 200)
LOAD = env_int("LOAD", 20)
OUT = Path(env_str("OUT", str(BENCH / "out" / "footprint")))
SIDECAR = ROOT / ".venv" / "bin" / "qlara-sidecar"
WEBHOOK_TOKEN = "footprint-webhook-token-0123456789abcdef"  # noqa: S105 - throwaway local token
PAGES = ("overview", "messages", "webhook_health", "failures", "stuck_messages")
#: Roles by what their command line holds, first match wins.
ROLES = (
    ("receiver", "sidecar receiver"),
    ("worker", "sidecar worker"),
    ("explorer", "sidecar dashboard"),
    ("metrics", "sidecar metrics"),
    ("redis", "valkey-server"),
    ("redis", "redis-server"),
    ("supervisor", "qlara-sidecar up"),
)


def _role(pid: int) -> str | None:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return None
    for role, needle in ROLES:
        if needle in command:
            return role
    return None


def _memory_kib(pid: int) -> tuple[int, int] | None:
    """(RSS, PSS) of ``pid`` in KiB."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    found = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in ("Rss", "Pss"):
            found[name] = int(rest.split()[0])
    return found.get("Rss", 0), found.get("Pss", 0)


def _role_of(pid: int, root: int) -> str | None:
    """The role of ``pid``, or of its nearest ancestor below ``root`` that has one: a
    receiver's or worker's child processes (multiprocessing's spawn) count as theirs."""
    current: int | None = pid
    while current is not None and current > 1:
        role = _role(current)
        if role is not None and (role != "supervisor" or current == root):
            return role
        if current == root:
            return None
        current = parent_pid(current)
    return None


def measure(root: int) -> dict[str, dict[str, float]]:
    """MiB by role: processes, RSS and PSS summed."""
    roles: dict[str, dict[str, float]] = {}
    for pid in sorted(tree_pids(root)):
        role, memory = _role_of(pid, root), _memory_kib(pid)
        if role is None or memory is None:
            continue
        row = roles.setdefault(role, {"processes": 0, "rss_mib": 0.0, "pss_mib": 0.0})
        row["processes"] += 1
        row["rss_mib"] += memory[0] / 1024
        row["pss_mib"] += memory[1] / 1024
    return roles


def _open_pages(explorer: str) -> str:
    sys.path.insert(0, str(ROOT))
    from tests.dashboard.browser import browser, chromium

    binary = chromium()
    if binary is None:
        return "no chromium: pages not opened"
    with browser(binary, free_port()) as tab:
        for page in PAGES:
            tab.open(f"{explorer}/{page}?window=1h")
    return f"{len(PAGES)} pages opened"


def _load(port: int, env: dict[str, str]) -> None:
    """The simulator posting RATE events a second for LOAD seconds to the receiver at ``port``."""
    subprocess.run(
        [
            str(SIDECAR), "simulate",
            "--url", f"http://127.0.0.1:{port}/webhook/{WEBHOOK_TOKEN}",
            "--rate", str(RATE), "--duration", str(LOAD),
        ],
        check=True, stdout=subprocess.DEVNULL, env=env,
    )  # fmt: skip


def run(config: str, procs: Procs) -> dict[str, Any]:
    data = tmpdir(f"footprint-{config}-")
    port = free_port()
    dashboard = free_port() if config == "explorer" else 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("QLARA_SIDECAR_")}
    env.update(
        QLARA_SIDECAR_DATA_DIR=str(data),
        QLARA_SIDECAR_PORT=str(port),
        QLARA_SIDECAR_DASHBOARD_PORT=str(dashboard),
        QLARA_SIDECAR_WEBHOOK_TOKEN=WEBHOOK_TOKEN,
        QLARA_SIDECAR_LOG_LEVEL="warning",
    )
    OUT.mkdir(parents=True, exist_ok=True)
    up = procs.start([SIDECAR, "up"], log_path=OUT / f"up-{config}.log", env=env)
    try:
        wait_http(f"http://127.0.0.1:{port}/readyz", ok=[200], timeout=120)
        if dashboard:
            wait_http(f"http://127.0.0.1:{dashboard}/_stcore/health", ok=[200], timeout=120)
        time.sleep(SETTLE)
        idle = measure(up.pid)
        log(f"{config}: idle {sum(r['pss_mib'] for r in idle.values()):.0f} MiB PSS")
        _load(port, env)
        opened = _open_pages(f"http://127.0.0.1:{dashboard}") if dashboard else "no explorer"
        loaded = measure(up.pid)
        log(f"{config}: loaded {sum(r['pss_mib'] for r in loaded.values()):.0f} MiB PSS")
        return {"config": config, "idle": idle, "loaded": loaded, "pages": opened}
    finally:
        procs.stop(up)
        rmtree(data)


#: The services of compose.yaml this measures, with their command lines there.
SERVICES = {
    "receiver": ["receiver", "--processes", "2"],
    "worker": ["worker", "--processes", "2"],
    "explorer": ["dashboard"],
}


def run_services(procs: Procs) -> dict[str, Any]:
    """The ``compose`` configuration: each service as compose runs it, a process tree (a
    container) of its own, over PostgreSQL (a throwaway database) and the machine's Redis."""
    import psycopg

    name = f"footprint_{os.getpid()}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    data = tmpdir("footprint-compose-")
    port, dashboard, metrics_port = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("QLARA_SIDECAR_")}
    env.update(
        QLARA_SIDECAR_DATA_DIR=str(data),
        QLARA_SIDECAR_REDIS_URL=REDIS_URL,
        QLARA_SIDECAR_NAMESPACE=name,
        QLARA_SIDECAR_DATABASE_URL=POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}",
        QLARA_SIDECAR_PORT=str(port),
        QLARA_SIDECAR_DASHBOARD_PORT=str(dashboard),
        QLARA_SIDECAR_WEBHOOK_TOKEN=WEBHOOK_TOKEN,
        QLARA_SIDECAR_READ_TOKEN=WEBHOOK_TOKEN + "-read",
        QLARA_SIDECAR_LOG_LEVEL="warning",
    )
    OUT.mkdir(parents=True, exist_ok=True)
    started: dict[str, Any] = {}
    try:
        subprocess.run([str(SIDECAR), "migrate"], check=True, env=env, stdout=subprocess.DEVNULL)
        for service, argv in SERVICES.items():
            own = dict(env)
            if service == "worker":  # compose's worker serves its own metrics
                own["QLARA_SIDECAR_METRICS_PORT"] = str(metrics_port)
            started[service] = procs.start(
                [SIDECAR, *argv], log_path=OUT / f"compose-{service}.log", env=own
            )
        wait_http(f"http://127.0.0.1:{port}/readyz", ok=[200], timeout=120)
        wait_http(f"http://127.0.0.1:{metrics_port}/metrics", ok=[200], timeout=120)
        wait_http(f"http://127.0.0.1:{dashboard}/_stcore/health", ok=[200], timeout=120)
        time.sleep(SETTLE)

        def by_service() -> dict[str, dict[str, float]]:
            found = {}
            for service, process in started.items():
                rows = measure(process.pid).values()
                found[service] = {
                    "processes": sum(r["processes"] for r in rows),
                    "rss_mib": sum(r["rss_mib"] for r in rows),
                    "pss_mib": sum(r["pss_mib"] for r in rows),
                }
            return found

        idle = by_service()
        _load(port, env)
        opened = _open_pages(f"http://127.0.0.1:{dashboard}")
        loaded = by_service()
        return {"config": "compose", "idle": idle, "loaded": loaded, "pages": opened}
    finally:
        for process in started.values():
            procs.stop(process)
        rmtree(data)
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| `up` | role | processes | idle RSS MiB | idle PSS MiB | loaded RSS MiB "
        "| loaded PSS MiB |",
        "|---|---|---|---|---|---|---|",
    ]
    for result in results:
        idle, loaded = result["idle"], result["loaded"]
        for role in sorted(idle.keys() | loaded.keys()):
            i, lo = idle.get(role, {}), loaded.get(role, {})
            lines.append(
                f"| {result['config']} | {role} | {int(i.get('processes', 0))} | "
                f"{i.get('rss_mib', 0):.0f} | {i.get('pss_mib', 0):.0f} | "
                f"{lo.get('rss_mib', 0):.0f} | {lo.get('pss_mib', 0):.0f} |"
            )
        lines.append(
            f"| {result['config']} | **all** | {sum(int(r['processes']) for r in idle.values())} "
            f"| {sum(r['rss_mib'] for r in idle.values()):.0f} "
            f"| **{sum(r['pss_mib'] for r in idle.values()):.0f}** "
            f"| {sum(r['rss_mib'] for r in loaded.values()):.0f} "
            f"| **{sum(r['pss_mib'] for r in loaded.values()):.0f}** |"
        )
    return "\n".join(lines)


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    procs = Procs()
    results = [
        run_services(procs) if config == "compose" else run(config, procs) for config in CONFIGS
    ]
    (OUT / "footprint.json").write_text(json.dumps(results, indent=2))
    print(table(results))
    for result in results:
        print(f"{result['config']}: {result['pages']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
