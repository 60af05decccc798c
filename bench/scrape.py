"""`/metrics` cost against the ledger's size: the scrape must not grow with the messages kept.

For each ledger size in SIZES (default 0, 100,000 and 1,000,000 messages, of which a fixed
PENDING are still waiting for a final status), a fresh SQLite ledger is filled by bulk insert,
`qlara-sidecar receiver --processes 1` is started on it, and `GET /metrics` is timed SCRAPES
times. Printed (and written to OUT/scrape.json): body size, and median / p90 / max scrape time
per size. Run from the repository root:

    .venv/bin/python bench/scrape.py
    SIZES=0,1000000 SCRAPES=100 .venv/bin/python bench/scrape.py

Only 127.0.0.1 is used; the receiver and Redis it starts are stopped by PID at the end.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, insert

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # the drivers share bench/common.py

from ledger import Ledger
from ledger.schema import messages

SIZES = [int(s) for s in common.env_str("SIZES", "0,100000,1000000").split(",")]
PENDING = common.env_int("PENDING", 1000)
SCRAPES = common.env_int("SCRAPES", 50)
OUT = Path(common.env_str("OUT", str(common.BENCH / "out" / "scrape")))
CHUNK = 50_000
CHANNELS = ("sms", "rcs", "whatsapp")


def fill(url: str, size: int) -> None:
    """Bulk-insert ``size`` messages: ``PENDING`` of them sent with no final status yet."""
    Ledger.connect(url, migrate=True).close()
    engine = create_engine(url)  # a bulk load straight into the table, in one transaction
    now = datetime.now(UTC)
    pending = min(PENDING, size)
    with engine.begin() as conn:
        for start in range(0, size, CHUNK):
            rows = []
            for i in range(start, min(start + CHUNK, size)):
                final = i >= pending
                sent = now - timedelta(minutes=i % 600 + 1)
                rows.append(
                    {
                        "message_id": f"bench-{i:08d}",
                        "status": "delivered" if final else "sent",
                        "status_time": sent + timedelta(seconds=5) if final else sent,
                        "is_final": final,
                        "sent_at": sent,
                        "final_at": sent + timedelta(seconds=5) if final else None,
                        "channel": CHANNELS[i % 3],
                        "customer_message_id": f"order-{i}",
                        "phone": f"+39390{i:07d}",
                        "latency_seconds": 5.0 if final else None,
                        "event_count": 2 if final else 1,
                        "duplicate_count": 0,
                        "first_received_at": sent,
                        "updated_at": sent,
                    }
                )
            conn.execute(insert(messages), rows)
    engine.dispose()


def scrape_times(url: str) -> tuple[list[float], int]:
    times: list[float] = []
    size = 0
    for _ in range(SCRAPES):
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - loopback
            size = len(response.read())
        times.append(time.perf_counter() - started)
    return times, size


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    procs = common.Procs()
    results = []
    try:
        redis_server = common.RedisServer(procs, common.tmpdir("scrape-redis"), "everysec")
        redis_server.start()
        for size in SIZES:
            data = common.tmpdir(f"scrape-{size}")
            db_url = f"sqlite:///{data / 'ledger.sqlite3'}"
            began = time.monotonic()
            fill(db_url, size)
            common.log(f"{size:,} messages loaded in {time.monotonic() - began:.1f} s")
            port = common.free_port()
            env = {
                "QLARA_SIDECAR_DATA_DIR": str(data),
                "QLARA_SIDECAR_PORT": str(port),
                "QLARA_SIDECAR_REDIS_URL": redis_server.url,
                "QLARA_SIDECAR_DATABASE_URL": db_url,
                "QLARA_SIDECAR_WEBHOOK_TOKEN": "bench-webhook-token",
                "QLARA_SIDECAR_READ_TOKEN": "bench-read-token",
                "QLARA_SIDECAR_LOG_LEVEL": "warning",
            }
            exe = Path(sys.executable).with_name("qlara-sidecar")
            receiver = procs.start(
                [exe, "receiver", "--processes", "1"],
                log_path=OUT / f"receiver-{size}.log",
                env=env,
            )
            base = f"http://127.0.0.1:{port}"
            common.wait_http(f"{base}/readyz", ok=[200], timeout=60)
            scrape_times(f"{base}/metrics")  # warm-up
            times, body = scrape_times(f"{base}/metrics")
            procs.stop(receiver)
            common.rmtree(data)
            ms = sorted(t * 1000 for t in times)
            row = {
                "messages": size,
                "pending": min(PENDING, size),
                "bytes": body,
                "median_ms": round(statistics.median(ms), 2),
                "p90_ms": round(ms[int(len(ms) * 0.9) - 1], 2),
                "max_ms": round(ms[-1], 2),
            }
            results.append(row)
            common.log(json.dumps(row))
    finally:
        procs.stop_all()
    (OUT / "scrape.json").write_text(json.dumps(results, indent=2))
    print("| messages in ledger | pending | /metrics bytes | median ms | p90 ms | max ms |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['messages']:,} | {r['pending']:,} | {r['bytes']:,} | {r['median_ms']} "
            f"| {r['p90_ms']} | {r['max_ms']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
