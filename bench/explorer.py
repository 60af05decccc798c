"""The explorer's queries on a full ledger: every page's reads must finish in under 500 ms.

For each backend in DBS (default SQLite and PostgreSQL), a fresh ledger is migrated and
filled by bulk load with MESSAGES messages (default 1,000,000) and about three events each
(sent, received, then the final one; a share still pending), spread evenly over SPAN_DAYS
(default 7) days ending now: 90 % delivered, 5 % error (a handful of carrier texts), 3 %
expired, 2 % pending; to six countries and eight operators, final SMS priced. Then, for
each window in WINDOWS (default 1h and 1d), each page's
queries (the functions of :mod:`dashboard.queries` the page calls, uncached) are run
REPEATS times (default 5) after one warm-up run; printed (and written to
OUT/explorer.json): the median and max per page, window and backend, against the 500 ms
target. Run from the repository root:

    .venv/bin/python bench/explorer.py
    MESSAGES=100000 DBS=sqlite .venv/bin/python bench/explorer.py

PostgreSQL is the one at POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/postgres);
a database of its own is created and dropped. SQLite lives in a temporary directory. Loading
takes minutes (PostgreSQL through COPY, SQLite through executemany); progress is printed.
PostgreSQL's tables are vacuumed and analysed after the load, as autovacuum would (since
PostgreSQL 13 it vacuums tables that only get inserts too, which sets the visibility map
that index-only scans need); SQLite's are not analysed, as the sidecar never does. The
per-minute event counts (``event_minutes``) and per-hour message counts (``message_hours``)
are filled as the writers and the migration would have.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import common  # the drivers share bench/common.py
import psycopg
from sqlalchemy import Connection, Engine, insert, text

from dashboard import queries
from dashboard.view import bucket_size
from ledger import Ledger, places, rollup
from ledger.engine import build_engine
from ledger.schema import channels, events, messages

MESSAGES = common.env_int("MESSAGES", 1_000_000)
SPAN_DAYS = common.env_float("SPAN_DAYS", 7)
DBS = common.env_str("DBS", "sqlite,postgresql").split(",")
WINDOWS = common.env_str("WINDOWS", "1h,1d").split(",")
REPEATS = common.env_int("REPEATS", 5)
POSTGRES_URL = common.env_str("POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
OUT = Path(common.env_str("OUT", str(common.BENCH / "out" / "explorer")))
TARGET_MS = 500
CHUNK = 20_000
CHANNELS = ("sms", "rcs", "whatsapp")
ERRORS = (
    "Blocked by carrier",
    "Unknown subscriber",
    "Absent subscriber",
    "Handset memory full",
    "Network failure",
)
#: Destinations, by the share of messages each gets: (country, the range's operator).
DESTINATIONS = (
    *[("IT", "TIM")] * 4,
    *[("IT", "Vodafone")] * 3,
    ("FR", "Orange"),
    ("DE", "T-Mobile"),
    ("ES", "Movistar"),
    ("GB", None),
    ("US", None),
)
THRESHOLDS = {
    "sms": timedelta(hours=1),
    "rcs": timedelta(hours=6),
    "whatsapp": timedelta(hours=6),
    "other": timedelta(hours=1),
}


def _story(i: int, now: datetime) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Message ``i``'s row and its events' rows."""
    span = timedelta(days=SPAN_DAYS)
    sent = now - span + span * (i + 0.5) / MESSAGES
    channel = CHANNELS[i % 3]
    kind = i % 100
    if kind < 90:
        status, error, after = "delivered", None, 4 + i % 40
    elif kind < 95:
        status, error, after = "error", ERRORS[i % len(ERRORS)], 2 + i % 9
    elif kind < 98:
        status, error, after = "expired", None, 3600
    else:
        status, error, after = "sent", None, 0
    final = status != "sent"
    final_at = sent + timedelta(seconds=after) if final else None
    updated = (final_at or sent) + timedelta(seconds=1)
    message_id = f"bench-{i:08d}"
    phone = f"+39390{i:07d}"
    country, operator = DESTINATIONS[i % len(DESTINATIONS)]
    price = 0.035 if final and channel == "sms" else None
    message = {
        "message_id": message_id,
        "status": status,
        "status_time": final_at or sent,
        "is_final": final,
        "sent_at": sent,
        "final_at": final_at,
        "read_at": None,
        "channel": channel,
        "customer_message_id": f"order-{i}",
        "phone": phone,
        "error": error,
        "latency_seconds": float(after) if final else None,
        "latency_observed_at": updated if final else None,
        "country": country,
        "operator": operator,
        "price": price,
        "event_count": 3 if final else 2,
        "duplicate_count": 0,
        "first_received_at": sent + timedelta(seconds=1),
        "updated_at": updated,
    }
    steps = [("sent", sent, None), ("received", sent + timedelta(seconds=1), None)]
    if final_at is not None:
        steps.append((status, final_at, error))
    rows = [
        {
            "message_id": message_id,
            "status": step,
            "event_time": at,
            "part": 1,
            "total_parts": 1,
            "status_code": None,
            "channel": channel,
            "customer_message_id": f"order-{i}",
            "phone": phone,
            "error": step_error,
            "shape": "A",
            "price": price if step == status and final else None,
            "naive_time": False,
            "raw": b'{"messageId":"' + message_id.encode() + b'"}',
            "received_at": at + timedelta(seconds=1),
            "receipt_id": f"r-{i}-{n}",
            "duplicates": 0,
            "time_from_receipt": False,
            "source": "webhook",
        }
        for n, (step, at, step_error) in enumerate(steps)
    ]
    return message, rows


def _chunks(now: datetime) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    for start in range(0, MESSAGES, CHUNK):
        message_rows: list[dict[str, Any]] = []
        event_rows: list[dict[str, Any]] = []
        for i in range(start, min(start + CHUNK, MESSAGES)):
            message, rows = _story(i, now)
            message_rows.append(message)
            event_rows.extend(rows)
        yield message_rows, event_rows


def _minutes(event_rows: list[dict[str, Any]]) -> Counter[rollup.MinuteKey]:
    """The per-minute counts of ``event_rows``, as the writers would have appended them and
    the workers compacted them (one row per minute key)."""
    return rollup.count_minutes((r["received_at"], r["channel"], r["status"]) for r in event_rows)


def _progress(done: int, began: float) -> None:
    rate = done / max(time.monotonic() - began, 1e-9)
    left = (MESSAGES - done) / rate if rate else 0
    common.log(f"  {done:,} / {MESSAGES:,} messages, {rate:,.0f}/s, about {left:.0f} s left")


def fill_sqlite(url: str, now: datetime) -> None:
    """Bulk-insert through SQLAlchemy (executemany), one transaction per chunk."""
    engine = build_engine(url)
    began = time.monotonic()
    with engine.begin() as conn:
        conn.execute(
            insert(channels),
            [{"channel": c, "first_seen_at": now - timedelta(days=30)} for c in CHANNELS],
        )
    done = 0
    minutes: Counter[rollup.MinuteKey] = Counter()
    for message_rows, event_rows in _chunks(now):
        with engine.begin() as conn:
            conn.execute(insert(messages), message_rows)
            conn.execute(insert(events), event_rows)
        minutes.update(_minutes(event_rows))
        done += len(message_rows)
        if done % (CHUNK * 10) == 0 or done == MESSAGES:
            _progress(done, began)
    with engine.begin() as conn:
        rollup.append(conn, minutes)
        places.backfill(conn)
    engine.dispose()


def fill_postgres(dsn: str, now: datetime) -> None:
    """Bulk-load through COPY, count the events per minute, then VACUUM ANALYZE."""
    began = time.monotonic()
    message_columns = [c.name for c in messages.columns]
    event_columns = [c.name for c in events.columns if c.name != "id"]
    with psycopg.connect(dsn) as conn:
        with conn.cursor() as cur:
            for c in CHANNELS:
                cur.execute(
                    "INSERT INTO channels (channel, first_seen_at) VALUES (%s, %s)",
                    (c, now - timedelta(days=30)),
                )
        done = 0
        minutes: Counter[rollup.MinuteKey] = Counter()
        for message_rows, event_rows in _chunks(now):
            minutes.update(_minutes(event_rows))
            with conn.cursor() as cur:
                with cur.copy(f"COPY messages ({', '.join(message_columns)}) FROM STDIN") as copy:
                    for row in message_rows:
                        copy.write_row([row[c] for c in message_columns])
                with cur.copy(f"COPY events ({', '.join(event_columns)}) FROM STDIN") as copy:
                    for row in event_rows:
                        copy.write_row([row[c] for c in event_columns])
            conn.commit()
            done += len(message_rows)
            if done % (CHUNK * 10) == 0 or done == MESSAGES:
                _progress(done, began)
        engine = build_engine(dsn.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.begin() as alchemy:
            rollup.append(alchemy, minutes)
            places.backfill(alchemy)
        engine.dispose()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")


def pages(now: datetime, window: timedelta) -> dict[str, Callable[[Connection], object]]:
    """Each page's queries, as the page runs them for ``window`` (default filters)."""
    start, end = now - window, now
    before = (start - window, start)
    step = bucket_size(start, end)
    probe = f"bench-{MESSAGES // 2:08d}"
    return {
        "overview": lambda c: (
            queries.compare_outcomes(c.engine, (start, end), before, None),
            queries.event_rates(c, start, end, None, step),
            queries.places(c, start, end, None),
        ),
        "messages": lambda c: (
            queries.find_messages(c, start=start, end=end),
            queries.count_messages(c, start=start, end=end),
        ),
        # A search reads the whole ledger, whatever the window: the last four digits of
        # the phone pick 100 of a million numbers here
        "messages, phone search": lambda c: (
            queries.find_messages(c, start=start, end=end, search="1234"),
            queries.count_messages(c, start=start, end=end, search="1234"),
        ),
        # Any other order than the newest update sorts the window in the database
        "messages, by latency": lambda c: (
            queries.find_messages(c, start=start, end=end, sort="latency", descending=False),
        ),
        "messages, error class": lambda c: (
            queries.find_messages(c, start=start, end=end, error_class="blocked"),
            queries.count_messages(c, start=start, end=end, error_class="blocked"),
        ),
        "message detail": lambda c: queries.message_detail(c, probe),
        "webhook health": lambda c: (
            queries.last_events(c, now),
            queries.event_rates(c, start, end, None, step),
            queries.gaps(c, start, end, None, timedelta(minutes=5)),
            queries.waiting_dead_letters(c, 20),
        ),
        "failures": lambda c: (
            queries.failures(c, start, end, None, bucket_size(start, end, 48)),
            queries.places(c, start, end, None),
        ),
        "stuck messages": lambda c: queries.stuck_messages(c, now, THRESHOLDS, None, 200),
    }


def time_pages(engine: Engine, now: datetime, backend: str) -> list[dict[str, Any]]:
    rows = []
    for window_text in WINDOWS:
        window = timedelta(
            seconds=int(window_text[:-1]) * {"m": 60, "h": 3600, "d": 86400}[window_text[-1]]
        )
        for page, run in pages(now, window).items():
            times = []
            with engine.connect() as conn:
                run(conn)  # warm-up: the page cache, as a viewer's second look
                for _ in range(REPEATS):
                    began = time.perf_counter()
                    run(conn)
                    times.append((time.perf_counter() - began) * 1000)
                    conn.rollback()
            row = {
                "backend": backend,
                "window": window_text,
                "page": page,
                "median_ms": round(statistics.median(times), 1),
                "max_ms": round(max(times), 1),
            }
            rows.append(row)
            common.log(json.dumps(row))
    return rows


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    now = datetime.now(UTC).replace(microsecond=0)
    for backend in DBS:
        common.log(f"{backend}: loading {MESSAGES:,} messages over {SPAN_DAYS:g} days")
        began = time.monotonic()
        if backend == "sqlite":
            data = common.tmpdir("explorer-sqlite")
            url = f"sqlite:///{data / 'ledger.sqlite3'}"
            Ledger.connect(url).close()
            fill_sqlite(url, now)

            def cleanup(data: Path = data) -> None:
                common.rmtree(data)

        else:
            name = f"qlara_bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{name}"')
            dsn = f"{POSTGRES_URL.rsplit('/', 1)[0]}/{name}"
            url = dsn.replace("postgresql://", "postgresql+psycopg://", 1)
            Ledger.connect(url).close()
            fill_postgres(dsn, now)

            def cleanup(name: str = name) -> None:  # type: ignore[misc]
                with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        common.log(f"{backend}: loaded in {time.monotonic() - began:.0f} s")
        engine = build_engine(url)
        try:
            with engine.connect() as conn:
                counted = conn.execute(text("SELECT count(*) FROM events")).scalar_one()
            common.log(f"{backend}: {counted:,} events")
            results.extend(time_pages(engine, now, backend))
        finally:
            engine.dispose()
            cleanup()
    (OUT / "explorer.json").write_text(json.dumps(results, indent=2))
    print(f"| backend | window | page | median ms | max ms | under {TARGET_MS} ms |")
    print("|---|---|---|---|---|---|")
    for r in results:
        ok = "yes" if r["max_ms"] < TARGET_MS else "**no**"
        print(
            f"| {r['backend']} | {r['window']} | {r['page']} | {r['median_ms']} "
            f"| {r['max_ms']} | {ok} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
