"""Several processes, one exposition: counters summed, the timestamp gauge at its maximum,
and a clean ``promtool check metrics``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from metrics import MULTIPROC_ENV, counts_owner, prepare_dir
from metrics.multiproc import OWNER_FILE
from tests.metrics.conftest import promtool_check

# One process's work: the webhook counts a few requests, a worker replays a few receipts.
COUNT = """
import sys
import metrics
metrics.initialise("9.9.9")
accepted, replays, stamp = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
for _ in range(accepted):
    metrics.WEBHOOK_REQUESTS.labels("accepted").inc()
    metrics.WEBHOOK_ACK.observe(0.004)
for _ in range(replays):
    metrics.RECEIPTS_REPLAYED.inc()
metrics.LAST_EVENT.labels("sms").set(stamp)
metrics.DEAD_LETTERS.labels("poison").inc()
"""

SCRAPE = "import sys, metrics; sys.stdout.buffer.write(metrics.render())"


def run(code: str, directory: Path, *args: str) -> bytes:
    env = {**os.environ, MULTIPROC_ENV: str(directory)}
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, check=True
    )
    return done.stdout


def samples_of(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
    }


def test_one_scrape_sums_what_two_processes_counted(tmp_path: Path) -> None:
    # Given two processes that counted into the same directory, then exited
    directory = prepare_dir(tmp_path / "metrics")
    run(COUNT, directory, "3", "5", "1700000000")
    run(COUNT, directory, "4", "6", "1700000100")

    # When a third process scrapes
    exposition = run(SCRAPE, directory)

    # Then the counters are the sums, the timestamp the latest, build info 1
    found = samples_of(exposition)
    assert found[("qlara_webhook_requests_total", (("outcome", "accepted"),))] == 7
    assert found[("qlara_webhook_requests_total", (("outcome", "spooled"),))] == 0
    assert found[("qlara_webhook_ack_seconds_count", ())] == 7
    assert found[("qlara_receipts_replayed_total", ())] == 11
    assert found[("qlara_dead_letters_total", (("reason", "poison"),))] == 2
    assert found[("qlara_webhook_last_event_timestamp_seconds", (("channel", "sms"),))] == (
        1700000100
    )
    assert found[("qlara_build_info", (("version", "9.9.9"),))] == 1


def test_the_multiprocess_exposition_passes_promtool(tmp_path: Path, promtool: str) -> None:
    directory = prepare_dir(tmp_path / "metrics")
    run(COUNT, directory, "1", "1", "1700000000")

    assert promtool_check(promtool, run(SCRAPE, directory)) == ""


def test_preparing_the_directory_forgets_the_previous_run(tmp_path: Path) -> None:
    directory = prepare_dir(tmp_path / "metrics")
    run(COUNT, directory, "3", "5", "1700000000")

    prepare_dir(directory)
    run(COUNT, directory, "1", "1", "1700000000")

    found = samples_of(run(SCRAPE, directory))
    assert found[("qlara_webhook_requests_total", (("outcome", "accepted"),))] == 1


def test_preparing_the_directory_keeping_counts_drops_only_the_gauges(tmp_path: Path) -> None:
    # Given a run that counted, timed requests and set the last-event gauge, then died
    directory = prepare_dir(tmp_path / "metrics")
    run(COUNT, directory, "3", "5", "1700000100")

    # When the directory is prepared for the next run, keeping counts, and that run counts
    prepare_dir(directory, keep_counts=True)
    assert not list(directory.glob("gauge_*.db"))
    run(COUNT, directory, "1", "1", "1700000000")

    # Then the counters and histograms go on from the first run's values, and the gauge is
    # the second run's alone
    found = samples_of(run(SCRAPE, directory))
    assert found[("qlara_webhook_requests_total", (("outcome", "accepted"),))] == 4
    assert found[("qlara_webhook_ack_seconds_count", ())] == 4
    assert found[("qlara_receipts_replayed_total", ())] == 6
    assert found[("qlara_webhook_last_event_timestamp_seconds", (("channel", "sms"),))] == (
        1700000000
    )


def test_keeping_counts_deletes_the_gauge_files_alone(tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    kept = ["counter_12.db", "histogram_12.db", "summary_12.db", "ledger.db", "keep.txt"]
    gauges = ["gauge_livesum_7.db", "gauge_all_7.db", "gauge_max_12.db"]
    for name in kept + gauges:
        (directory / name).write_bytes(b"x")

    prepare_dir(directory, keep_counts=True)

    assert sorted(p.name for p in directory.iterdir()) == sorted(kept)


def test_preparing_the_directory_deletes_only_prometheus_value_files(tmp_path: Path) -> None:
    # Given a directory an operator named that also holds files of others
    directory = tmp_path / "shared"
    directory.mkdir()
    values = ["counter_12.db", "histogram_12.db", "gauge_livesum_7.db", "gauge_all_7.db"]
    others = ["ledger.db", "counter.db", "notes_12.db", "counter_12.db.bak", "keep.txt"]
    for name in values + others:
        (directory / name).write_bytes(b"x")

    prepare_dir(directory)

    assert sorted(p.name for p in directory.iterdir()) == sorted(others)


# The parent counts 2, a forked child 3 more, then the parent 1 more.
FORKED = """
import os, sys
import metrics
metrics.initialise("9.9.9")
metrics.WEBHOOK_REQUESTS.labels("accepted").inc(2)
child = os.fork()
if child == 0:
    metrics.WEBHOOK_REQUESTS.labels("accepted").inc(3)
    os._exit(0)
os.waitpid(child, 0)
metrics.WEBHOOK_REQUESTS.labels("accepted").inc()
print(os.getpid(), child)
"""


def test_a_forked_child_counts_into_its_own_file(tmp_path: Path) -> None:
    # Given a process that counted, forked a child that counted, then counted again
    directory = prepare_dir(tmp_path / "metrics")
    parent, child = run(FORKED, directory).split()

    # Then each wrote its own file, and a scrape sums them
    files = {path.name for path in directory.glob("counter_*.db")}
    assert files == {f"counter_{parent.decode()}.db", f"counter_{child.decode()}.db"}
    found = samples_of(run(SCRAPE, directory))
    assert found[("qlara_webhook_requests_total", (("outcome", "accepted"),))] == 6


OWNER = "import sys, metrics; sys.stdout.write(metrics.counts_owner())"


def test_the_processes_of_a_directory_share_one_owner_of_the_ledger_kept_counts(
    tmp_path: Path,
) -> None:
    directory = prepare_dir(tmp_path / "metrics")

    # Whichever process asks first makes the id; the others, and a reader naming the
    # directory, read the same one
    first, second = run(OWNER, directory).decode(), run(OWNER, directory).decode()
    assert first == second == counts_owner(directory)
    assert len(first) == 32
    # And another directory has another
    assert counts_owner(prepare_dir(tmp_path / "other")) != first


def test_the_owner_goes_on_with_the_counters_and_starts_again_with_them(tmp_path: Path) -> None:
    directory = prepare_dir(tmp_path / "metrics")
    owner = counts_owner(directory)

    prepare_dir(directory, keep_counts=True)
    assert counts_owner(directory) == owner

    prepare_dir(directory)
    assert counts_owner(directory) != owner


def test_an_empty_owner_file_is_an_error_that_says_what_to_do(tmp_path: Path) -> None:
    directory = prepare_dir(tmp_path / "metrics")
    (directory / OWNER_FILE).write_text("")

    with pytest.raises(OSError, match="delete it"):
        counts_owner(directory)
