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
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

from prometheus_client import multiprocess, values

#: The environment variable prometheus-client reads.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: The value files prometheus-client writes: counter_<pid>.db, gauge_livesum_<pid>.db ...
_VALUE_FILE = re.compile(r"(counter|histogram|summary|gauge_[a-z]+)_\d+\.db")


def multiprocess_mode() -> bool:
    """Whether this process writes its values to files (the variable was set when
    prometheus-client was imported, and still is)."""
    return MULTIPROC_ENV in os.environ and values.ValueClass is not values.MutexValue


def prepare_dir(path: Path, *, keep_counts: bool = False) -> Path:
    """Create ``path`` if needed and delete the value files a previous run left there:
    those prometheus-client names ``<type>_<pid>.db``; with ``keep_counts``, the gauges
    (``gauge_<mode>_<pid>.db``) only, so the counters and histograms (``counter_``,
    ``histogram_``, ``summary_``) of the previous run go on in the totals. A gauge is a value
    of now: a dead process's would be shown as current. Any other file, ``*.db`` included,
    is left alone (an operator's ``PROMETHEUS_MULTIPROC_DIR`` may hold others'). Return
    ``path``.

    Call before any process that writes into it starts. Raises ``OSError``.
    """
    path.mkdir(parents=True, exist_ok=True)
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
