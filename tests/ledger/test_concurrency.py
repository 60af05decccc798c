"""Several workers recording events of the same messages at once leave exact results."""

from __future__ import annotations

import random
import threading

from ledger import Ledger, RecordResult
from qlara import DeliveryEvent
from tests.ledger.places_check import counted, rolled_up
from tests.ledger.samples import event, receipt

WORKERS = 6
MESSAGES = [f"m-{n}" for n in range(8)]


def _all_events() -> list[DeliveryEvent]:
    return [
        event(message_id, status, at, channel="whatsapp")
        for message_id in MESSAGES
        for status, at in (("sent", 0), ("received", 1), ("delivered", 5), ("read", 9))
    ]


def test_concurrent_writers_leave_exact_states_and_counts(database_url: str) -> None:
    # Given a migrated ledger and workers that each received every event once
    Ledger.connect(database_url).close()
    distinct = _all_events()
    results: list[RecordResult] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(WORKERS)

    def work(seed: int) -> None:
        rng = random.Random(seed)
        mine = distinct[:]
        rng.shuffle(mine)
        worker = Ledger.connect(database_url, migrate=False)
        try:
            start.wait()
            while mine:
                size = rng.randint(1, 3)
                batch, mine = mine[:size], mine[size:]
                result = worker.record(receipt(*batch))
                with lock:
                    results.append(result)
        except BaseException as exc:
            with lock:
                errors.append(exc)
        finally:
            worker.close()

    # When they all record at once, in their own orders and receipt sizes
    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then each event is stored once and counted as a duplicate by every other worker
    assert errors == []
    assert sum(len(r.new_events) for r in results) == len(distinct)
    assert sum(len(r.duplicate_events) for r in results) == len(distinct) * (WORKERS - 1)
    # And each message's state and latency are exact, the latency reported once
    assert sum(len(r.latencies) for r in results) == len(MESSAGES)
    check = Ledger.connect(database_url, migrate=False)
    for message_id in MESSAGES:
        message = check.get_message(message_id)
        assert message is not None
        assert (message.status, message.is_final, message.latency_seconds) == (
            "delivered",
            True,
            5.0,
        )
        assert message.read_at is not None
        assert message.event_count == 4
        assert message.duplicate_count == 4 * (WORKERS - 1)
    counts = check.counts()
    assert (counts.events, counts.messages) == (len(distinct), len(MESSAGES))
    assert counts.duplicates == len(distinct) * (WORKERS - 1)
    # And the per-hour counts of messages sum to the messages, each counted once
    with check._writer.begin() as conn:
        assert rolled_up(conn) == counted(conn)
    check.close()
