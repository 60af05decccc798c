"""The metrics directory a launcher prepares for the processes it starts.

Receiver and worker processes count in prometheus-client's multiprocess mode, so one
``GET /metrics`` shows them all. The mode is chosen when Python starts in a child, from
``PROMETHEUS_MULTIPROC_DIR``: the launcher prepares the directory (deleting the previous
run's values, prometheus-client's ``<type>_<pid>.db`` files and nothing else:
:func:`metrics.prepare_dir`) and puts it in the children's environment, and when its
supervisor sees a child exit it cleans up after it (:func:`metrics.process_exited`).

- ``up`` owns its directory: ``PROMETHEUS_MULTIPROC_DIR`` when the operator set it, else
  ``DATA_DIR/metrics``; emptied at start. One host: a restart resets every series at once,
  and no sum over hosts mixes it with hosts that went on.
- A receiver or worker role started with several processes, or with its metrics listener,
  and no ``PROMETHEUS_MULTIPROC_DIR`` uses ``DATA_DIR/metrics/<role>``. At start it drops
  the previous run's gauges and keeps its counters and histograms: when the role is one
  host among several and is restarted (a crash, an upgrade), the counters summed over the
  hosts never go back, and they keep matching the ledger, as they do when the supervisor
  restarts one child (dead children's counters stay). Deleting the directory resets them.
  When the variable is set (by `up`, or by an operator who shares one directory between
  roles) it is used as is: whoever set it prepares it.
- One process alone keeps its values in memory (a worker started with ``--processes 1``
  and no ``PROMETHEUS_MULTIPROC_DIR`` included: nothing else can serve its values).
- The counters the workers keep in the ledger (events, duplicates, error classes) are
  filed under the owner id of the directory they count into (:func:`metrics.counts_owner`);
  `up` makes a new one with its emptied directory, the worker role keeps its own with its
  counters. A receiver role's directory has none, so it shows none of those counters.
- The metrics listener (``qlara-sidecar metrics``, :mod:`sidecar.metrics_role`) only reads:
  ``PROMETHEUS_MULTIPROC_DIR`` when set, else the worker role's ``DATA_DIR/metrics/worker``;
  it never empties it and never counts into it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from metrics import MULTIPROC_ENV, counts_owner, prepare_dir, process_exited
from sidecar.layout import METRICS_DIR, WORKER_METRICS, data_dir
from sidecar.settings import Settings


def up_dir(settings: Settings) -> Path:
    """The directory of `up`'s processes, emptied, with a new owner of the counters its
    workers keep in the ledger (:func:`metrics.counts_owner`). Raises ``OSError``."""
    given = os.environ.get(MULTIPROC_ENV)
    path = prepare_dir(Path(given) if given else data_dir(settings) / METRICS_DIR)
    counts_owner(path)
    return path


def role_dir(settings: Settings, role: str) -> Path:
    """The directory a role's processes share: the inherited one as is, else
    ``DATA_DIR/metrics/<role>`` with the previous run's gauges deleted and its counters and
    histograms kept, the owner of the ledger-kept counters too (made now for the worker
    role, so a scrape shows them from the start). Raises ``OSError``."""
    given = os.environ.get(MULTIPROC_ENV)
    path = Path(given) if given else data_dir(settings) / METRICS_DIR / role
    if not given:
        prepare_dir(path, keep_counts=True)
    if role == WORKER_METRICS:
        counts_owner(path)
    return path


def on_child_exit(directory: Path) -> Callable[[int], None]:
    """The supervisor's ``on_exit``: clean up after an exited child in ``directory``."""

    def exited(pid: int) -> None:
        process_exited(pid, directory)

    return exited
