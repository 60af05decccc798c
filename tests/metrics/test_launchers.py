"""The launchers' part: a metrics directory prepared at start (emptied by `up`, its gauges
alone deleted by a role on its own), inherited as is by children, and cleaned up after a
child the supervisor sees exit."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from metrics import MULTIPROC_ENV, counts_owner, existing_counts_owner
from metrics.multiproc import OWNER_FILE
from sidecar import metrics_dir
from sidecar.settings import load_settings
from sidecar.supervisor import ChildSpec, Supervisor
from workers.dead_letters import dead_letter_reason
from workers.errors import PermanentFailure, RejectedByLedger, UndecodableReceipt


def test_up_empties_its_directory_of_the_previous_runs_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    stale = tmp_path / "data" / "metrics" / "counter_123.db"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    (stale.parent / OWNER_FILE).write_text("previous-run\n")

    directory = metrics_dir.up_dir(load_settings({"data_dir": tmp_path / "data"}))

    # Only a new owner of the ledger-kept counters is there: they start again with the rest
    assert directory == stale.parent
    assert [p.name for p in directory.iterdir()] == [OWNER_FILE]
    assert counts_owner(directory) not in ("", "previous-run")


def test_a_role_uses_an_inherited_directory_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inherited = tmp_path / "shared"
    inherited.mkdir()
    (inherited / "counter_1.db").write_bytes(b"a sibling's values")
    monkeypatch.setenv(MULTIPROC_ENV, str(inherited))

    directory = metrics_dir.role_dir(load_settings({"data_dir": tmp_path / "data"}), "worker")

    assert directory == inherited
    assert (inherited / "counter_1.db").exists()


def test_a_role_on_its_own_gets_its_own_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    settings = load_settings({"data_dir": tmp_path / "data"})

    directory = metrics_dir.role_dir(settings, "receiver")

    assert directory == (tmp_path / "data" / "metrics" / "receiver").resolve()
    assert directory.is_dir()
    # No worker counts there: no owner of ledger-kept counters, so a scrape shows none
    assert existing_counts_owner(directory) is None


def test_a_role_started_again_keeps_its_counters_and_drops_its_gauges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the files a worker host's processes left when the host died
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    previous = tmp_path / "data" / "metrics" / "worker"
    previous.mkdir(parents=True)
    kept = ["counter_41.db", "histogram_41.db", "counter_42.db", OWNER_FILE]
    for name in [*kept, "gauge_livesum_41.db", "gauge_max_42.db"]:
        (previous / name).write_bytes(b"x")
    (previous / OWNER_FILE).write_text("this-host\n")

    # When the role starts again on the same data directory
    directory = metrics_dir.role_dir(load_settings({"data_dir": tmp_path / "data"}), "worker")

    # Then the sums over the hosts do not go back: only the gauges, values of now, are gone,
    # and the ledger-kept counters go on under the same owner
    assert sorted(p.name for p in directory.iterdir()) == sorted(kept)
    assert counts_owner(directory) == "this-host"


def test_the_supervisor_cleans_up_after_a_child_that_exits(tmp_path: Path) -> None:
    # Given a child that exits at once, and a live-only gauge file under its pid
    directory = tmp_path / "metrics"
    directory.mkdir()
    supervisor = Supervisor(on_exit=metrics_dir.on_child_exit(directory), min_backoff=60)
    child = supervisor.add(
        ChildSpec(name="short", argv=[sys.executable, "-c", "pass"], env={}), stage=0
    )
    assert child.pid is not None
    live = directory / f"gauge_livesum_{child.pid}.db"
    live.write_bytes(b"")
    kept = directory / f"counter_{child.pid}.db"
    kept.write_bytes(b"")

    # When the supervisor notices the exit
    deadline = time.monotonic() + 10
    while live.exists() and time.monotonic() < deadline:
        supervisor.poll()
        time.sleep(0.05)
    supervisor.shutdown(deadline_s=1)

    # Then its live-only values are gone and its counters stay
    assert not live.exists()
    assert kept.exists()


@pytest.mark.parametrize(
    ("exception", "permanent", "reason"),
    [
        (UndecodableReceipt("bad"), True, "undecodable"),
        (RejectedByLedger("no"), True, "rejected"),
        (PermanentFailure("no"), True, "permanent"),
        (ConnectionError("down"), False, "retries_exhausted"),
    ],
)
def test_dead_letter_reasons_come_from_a_closed_set(
    exception: BaseException, permanent: bool, reason: str
) -> None:
    assert dead_letter_reason(exception, permanent=permanent) == reason
