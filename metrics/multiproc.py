"""Multiprocess mode: where each process's values live, and cleaning up after processes.

prometheus-client keeps values in memory unless ``PROMETHEUS_MULTIPROC_DIR`` is set when it
is first imported; then every process writes its own files there and a scrape merges them.
So the launcher (``up``, or a receiver or worker role starting several processes) prepares
the directory (:func:`prepare_dir`) and puts it in the environment of the children it starts,
before Python starts in them. When a child exits, :func:`process_exited` removes what only a
live process may show (``live*`` gauges); its counters stay, so totals never go back.
Preparing deletes every value file of the previous run, or, with ``keep_counts``, its gauges
only: its counters and histograms then stay, and a scrape adds what the new processes count
to them, so a host started again does not go back either (its files collected between
runs; a process that gets a dead one's pid counts on in its file).

The counters the workers keep in the ledger (``metrics.definitions.LEDGER_COUNTED``) are
filed there under the directory's owner id (:func:`counts_owner`), which a scrape of the
directory reads back: kept and dropped with the counters, so the two kinds go on or start
again together.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from pathlib import Path

from prometheus_client import multiprocess, values

#: The environment variable prometheus-client reads.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: The value files prometheus-client writes: counter_<pid>.db, gauge_livesum_<pid>.db ...
_VALUE_FILE = re.compile(r"(counter|histogram|summary|gauge_[a-z]+)_\d+\.db")
#: The file holding a directory's owner id (:func:`counts_owner`).
OWNER_FILE = "counts-owner"
#: The owner id of a process that keeps its values in memory, and whether anything in it
#: counts under it.
_PROCESS_OWNER = f"process-{uuid.uuid4().hex}"
_process_owner_used = False


def multiprocess_mode() -> bool:
    """Whether this process writes its values to files (the variable was set when
    prometheus-client was imported, and still is)."""
    return MULTIPROC_ENV in os.environ and values.ValueClass is not values.MutexValue


def prepare_dir(path: Path, *, keep_counts: bool = False) -> Path:
    """Create ``path`` if needed and delete the value files a previous run left there:
    those prometheus-client names ``<type>_<pid>.db``; with ``keep_counts``, the gauges
    (``gauge_<mode>_<pid>.db``) only, so the counters and histograms (``counter_``,
    ``histogram_``, ``summary_``) of the previous run go on in the totals. A gauge is a value
    of now: a dead process's would be shown as current. Without ``keep_counts`` the owner id
    of the ledger-kept counters goes too (:func:`counts_owner`). Any other file, ``*.db``
    included, is left alone (an operator's ``PROMETHEUS_MULTIPROC_DIR`` may hold others'). Return
    ``path``.

    Call before any process that writes into it starts. Raises ``OSError``.
    """
    path.mkdir(parents=True, exist_ok=True)
    if not keep_counts:
        (path / OWNER_FILE).unlink(missing_ok=True)
    for stale in path.glob("*_*.db"):
        found = _VALUE_FILE.fullmatch(stale.name)
        if found and (not keep_counts or found.group(1).startswith("gauge_")):
            stale.unlink(missing_ok=True)
    return path


def process_exited(pid: int, directory: str | os.PathLike[str] | None = None) -> None:
    """Forget the live-only values of the process ``pid``, which has exited, in
    ``directory`` (default: this process's ``PROMETHEUS_MULTIPROC_DIR``). Does nothing
    without one; never raises."""
    path = os.fspath(directory) if directory is not None else os.environ.get(MULTIPROC_ENV)
    if not path or not os.path.isdir(path):
        return
    # Best effort: a stale live gauge only shows an extra series.
    with contextlib.suppress(OSError):
        multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]


def counts_owner(directory: str | os.PathLike[str] | None = None) -> str:
    """The owner id under which the processes counting into ``directory`` (default: this
    process's ``PROMETHEUS_MULTIPROC_DIR`` in multiprocess mode) file the counters kept in
    the ledger, and under which a scrape of it reads them: the directory's ``counts-owner``
    file, made on first use (by whichever process comes first: the others read it). A
    process that keeps its values in memory has an id of its own for its lifetime.

    Those who count (workers), and the launchers that prepare a directory for them, call
    this; a scrape calls :func:`existing_counts_owner`, so a directory no worker counts into
    (a receiver host's) shows none of these counters. Raises ``OSError`` when the file can
    be neither read nor made.
    """
    global _process_owner_used
    path = _owner_file(directory)
    if path is None:
        _process_owner_used = True
        return _PROCESS_OWNER
    with contextlib.suppress(FileNotFoundError):
        return _read_owner(path)
    made = uuid.uuid4().hex
    draft = path.with_name(f".{OWNER_FILE}.{os.getpid()}.{made}")
    draft.write_text(made + "\n")
    try:
        os.link(draft, path)  # atomic, and refuses to replace: the first process wins
    except FileExistsError:
        pass
    finally:
        draft.unlink(missing_ok=True)
    return _read_owner(path)


def existing_counts_owner(directory: str | os.PathLike[str] | None = None) -> str | None:
    """The owner id of :func:`counts_owner`, ``None`` when nothing has made one: no worker
    counts into ``directory`` (or into this process, in memory). Raises ``OSError`` when
    the file is there but cannot be read."""
    path = _owner_file(directory)
    if path is None:
        return _PROCESS_OWNER if _process_owner_used else None
    try:
        return _read_owner(path)
    except FileNotFoundError:
        return None


def _owner_file(directory: str | os.PathLike[str] | None) -> Path | None:
    if directory is None:
        if not multiprocess_mode():
            return None
        directory = os.environ[MULTIPROC_ENV]
    return Path(directory) / OWNER_FILE


def _read_owner(path: Path) -> str:
    owner = path.read_text().strip()
    if not owner:
        raise OSError(f"{path} is empty: delete it to start the ledger-kept counts again")
    return owner
