"""CPU per event of the ledger alone: `Ledger.record_many` on a fresh SQLite file (or DATABASE_URL)
for batches of 1, 8, 32 and 128 receipts.

    .venv/bin/python bench/record.py                       # SQLite in a temporary directory
    .venv/bin/python bench/record.py postgresql+psycopg://postgres@127.0.0.1:5432/test
    TALLY=off .venv/bin/python bench/record.py             # without the ledger-kept counts

The receipts are single-event webhook requests from `simulator.plan_traffic` (about 12,600,
5% of them resent), parsed as the receiver parses them. Batch 1 records the first 2,000 only.
Each transaction adds its counts to ``recorded_counts`` as a worker's does (``TALLY=on``, the
default, with the workers' own tally); ``TALLY=off`` records without them, to measure their
price. Prints wall and CPU microseconds per event for each batch size.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid

from sqlalchemy import text

from ledger import Ledger, Tally
from metrics import tally_recorded
from qlara import Receipt
from qlara.parse import parse_body
from simulator import plan_traffic

TABLES = (
    "events",
    "messages",
    "receipts",
    "inbound",
    "channels",
    "event_minutes",
    "recorded_counts",
)


def main() -> int:
    url = sys.argv[1] if len(sys.argv) > 1 else None
    tally_env = os.environ.get("TALLY", "on")
    if tally_env not in ("on", "off"):
        print(f"TALLY must be on or off, not {tally_env!r}", file=sys.stderr)
        return 2
    tally = Tally("bench", 1, tally_recorded) if tally_env == "on" else None
    plan = plan_traffic(events=12_000, seed=1, batch_share=0.0, duplicates=0.05)
    receipts = []
    for body in plan.bodies:
        parsed = parse_body(body)
        receipts.append(
            Receipt(
                receipt_id=uuid.uuid4().hex,
                received_at=time.time(),
                events=tuple(parsed.events),
                inbound=tuple(parsed.inbound),
            )
        )
    for size in (1, 8, 32, 128):
        target = url or f"sqlite:///{tempfile.mkdtemp()}/ledger.sqlite3"
        ledger = Ledger.connect(target, migrate=True)
        sample = receipts[:2000] if size == 1 else receipts
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for start in range(0, len(sample), size):
            ledger.record_many(sample[start : start + size], tally=tally)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        events = sum(len(r.events) for r in sample)
        print(
            f"tally {tally_env:<3} batch {size:>3}: {len(sample):,} receipts, {events:,} events: "
            f"wall {1e6 * wall / events:,.0f} us/event, CPU {1e6 * cpu / events:,.0f} us/event, "
            f"{events / wall:,.0f} events/s"
        )
        if url:  # leave the shared database as it was
            with ledger._writer.begin() as conn:
                for table in TABLES:
                    conn.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - fixed names
        ledger.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
