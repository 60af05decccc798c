"""``GET /metrics``: one text exposition for the whole sidecar, built per scrape.

In multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` set when the process started) every
receiver and worker process writes its values to files there, and a scrape merges them all
with prometheus-client's ``MultiProcessCollector``; otherwise the scrape reads this process's
values. A process that only serves other processes' values (``qlara-sidecar metrics``) names
their directory instead, and shows what is there and nothing of its own. Either way the
scrape-time gauges come from the collectors passed in.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from metrics.definitions import ALL
from metrics.multiproc import MULTIPROC_ENV, multiprocess_mode

#: The ``Content-Type`` of what :func:`render` returns: the text format every Prometheus
#: reads (``text/plain; version=0.0.4; charset=utf-8``).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


def scrape_registry(
    extra: Iterable[Collector] = (), *, directory: str | os.PathLike[str] | None = None
) -> CollectorRegistry:
    """A fresh registry for one scrape: every process's metrics, then ``extra`` collectors.

    With ``directory``, the metrics are the values the processes counting there wrote (read
    only: nothing is written or removed), whatever this process's own mode.

    Raises ``ValueError`` when the multiprocess directory is missing.
    """
    registry = CollectorRegistry(auto_describe=False)
    if directory is not None:
        MultiProcessCollector(registry, path=os.fspath(directory))  # type: ignore[no-untyped-call]
    elif multiprocess_mode():
        MultiProcessCollector(registry, path=os.environ[MULTIPROC_ENV])  # type: ignore[no-untyped-call]
    else:
        for metric in ALL:
            registry.register(metric)
    for collector in extra:
        registry.register(collector)
    return registry


def render(
    extra: Iterable[Collector] = (), *, directory: str | os.PathLike[str] | None = None
) -> bytes:
    """The exposition text of :func:`scrape_registry`. Blocking (reads files and runs the
    collectors): call it off the event loop."""
    return generate_latest(scrape_registry(extra, directory=directory))
