"""Reconciler benchmark: the cost of polling Qlara for a large backlog of pending messages.

    .venv/bin/python bench/reconcile.py

A fresh SQLite ledger (or PostgreSQL with DB=postgres) gets PENDING messages sent an hour ago
and never final (the webhook "lost" them), in batches through the ledger's own recording
path. A fake Qlara (`qlara-sidecar fake-qlara`'s app, in a thread of this process, on
loopback) knows them all: FINAL_SHARE of them final, the rest still SENT. Then ROUNDS rounds
of the reconciler run back to back (each as its periodic thread would, without the wait),
with the production limits (50/s, 1,000/minute) on both sides, and the round's figures are
recorded: messages polled, API calls, how much of the minute's limit it used, its wall time,
the CPU this process spent (reconciler, ledger and the fake together: an upper bound), and
the ledger's query for what is due, timed alone.

Knobs (environment): PENDING (100000), FINAL_SHARE (0.5), ROUNDS (3), DB (sqlite), OUT.
"""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import uvicorn
from common import BENCH, env_float, env_int, env_str, free_port, log, machine_facts

from ledger import Horizon, Ledger
from qlara import DeliveryEvent, Receipt, Shape, Source
from qlara_api import Limits, QlaraClient, RateLimiter
from qlara_api.fake import FakeQlara, create_fake_app, most_in_any_window
from workers.connection import LedgerConnection
from workers.reconcile import ReconcileConfig, Reconciler

KEY = "bench-api-key-0123456789"  # a throwaway local key


def seed(ledger: Ledger, pending: int, sent_at: datetime) -> float:
    started = time.perf_counter()
    batch: list[Receipt] = []
    for n in range(pending):
        event = DeliveryEvent(
            message_id=f"m-{n:07d}",
            status="sent",
            event_time=sent_at,
            shape=Shape.APP,
            raw=b"{}",
            channel="sms",
            customer_message_id=f"order-{n:07d}",
            source=Source.APP,
        )
        batch.append(
            Receipt(receipt_id=f"seed-{n}", received_at=sent_at.timestamp(), events=(event,))
        )
        if len(batch) == 1000:
            ledger.record_many(batch)
            batch = []
    if batch:
        ledger.record_many(batch)
    return time.perf_counter() - started


def main() -> int:
    pending = env_int("PENDING", 100_000)
    final_share = env_float("FINAL_SHARE", 0.5)
    rounds = env_int("ROUNDS", 3)
    db = env_str("DB", "sqlite")
    out = Path(env_str("OUT", str(BENCH / "out" / f"reconcile-{time.strftime('%Y%m%d-%H%M%S')}")))
    out.mkdir(parents=True, exist_ok=True)
    if db == "postgres":
        url = env_str("DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    else:
        url = f"sqlite:///{out}/ledger.db"
    ledger = Ledger.connect(url)
    ledger.purge(datetime.now(UTC) + timedelta(days=1))
    now = datetime.now(UTC)
    log(f"seeding {pending} pending messages into {db}")
    seed_s = seed(ledger, pending, now - timedelta(hours=1))
    log(f"seeded in {seed_s:.1f} s")

    limits = Limits()  # production: 50/s, 1,000/minute
    fake = FakeQlara(api_key=KEY, limits=limits)
    finals = int(pending * final_share)
    fake.add(
        [
            {
                "messageId": f"m-{n:07d}",
                "customerMessageId": f"order-{n:07d}",
                "channel": "sms",
                "status": "DELIVERED" if n < finals else "SENT",
            }
            for n in range(pending)
        ]
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_fake_app(fake), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)

    config = ReconcileConfig(
        api_key=KEY,
        api_url=f"http://127.0.0.1:{port}/api",
        after=Horizon(by_channel={}, default=timedelta(minutes=10)),
        horizon=Horizon(by_channel={}, default=timedelta(hours=48)),
        limits=limits,
    )
    connection = LedgerConnection(url)
    reconciler = Reconciler(
        connection,
        config,
        lambda: QlaraClient(KEY, base_url=config.api_url, limiter=RateLimiter(limits)),
        recorded=lambda receipt, result: None,
    )
    rows: list[dict[str, Any]] = []
    for number in range(1, rounds + 1):
        started = time.monotonic()
        query_started = time.perf_counter()
        ledger.due_polls(after=config.after, horizon=config.horizon, max_polls=10, limit=50_000)
        query_s = time.perf_counter() - query_started
        calls_before = len(fake.log)
        cpu_before = time.process_time()
        wall_before = time.perf_counter()
        done = reconciler.reconcile_once(datetime.now(UTC))
        wall = time.perf_counter() - wall_before
        cpu = time.process_time() - cpu_before
        calls = fake.log[calls_before:]
        row = {
            "round": number,
            "polled": done.polled,
            **done.results,
            "api_calls": len(calls),
            "share_of_minute_limit": round(len(calls) / limits.per_minute, 3),
            "refused_429": sum(1 for c in calls if c["status"] == 429),
            "most_in_1s": most_in_any_window([c["t"] for c in calls], 1.0),
            "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2),
            "cpu_ms_per_message": round(cpu * 1000 / max(done.polled, 1), 3),
            "due_query_s": round(query_s, 3),
            "round_started_s": round(started, 1),
        }
        rows.append(row)
        log(json.dumps(row))
    server.should_exit = True
    thread.join(timeout=10)
    connection.close()
    pending_left = sum(n for n, _ in ledger.backlog().pending.values())
    ledger.close()
    summary = {
        "pending": pending,
        "final_share": final_share,
        "db": db,
        "seed_s": round(seed_s, 1),
        "pending_left": pending_left,
        "rounds": rows,
        "machine": machine_facts(),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    lines = [
        "| round | polled | filled | still pending | API calls | of the minute's limit | 429s "
        "| most calls in 1 s | wall s | CPU s | CPU ms/message | due query s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['round']} | {r['polled']:,} | {r['filled']:,} | {r['still_pending']:,} "
            f"| {r['api_calls']} | {r['share_of_minute_limit']:.0%} | {r['refused_429']} "
            f"| {r['most_in_1s']} | {r['wall_s']} | {r['cpu_s']} | {r['cpu_ms_per_message']} "
            f"| {r['due_query_s']} |"
        )
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"pending left: {pending_left:,}; results in {out}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    raise SystemExit(main())
