"""``GET /metrics``: the Prometheus exposition of the whole sidecar.

Every receiver and worker process counts into the shared multiprocess directory (see
:mod:`metrics.multiproc`); a scrape merges them and adds the counters the workers keep in
the ledger under the directory's owner id (events, duplicates, error classes: exact across
crashes) and what is waiting now: pending messages and dead letters from the ledger
(through its indexes), the broker's backlog from Redis, the local spool. A backend that
does not answer leaves its samples out (``qlara_scrape_source_up{source} 0``); the scrape
itself still answers 200.

The route serves the :class:`Exposition` on ``app.state.exposition``: the receiver's app
(:func:`receiver.create_app`) builds one over its runtime, the metrics-only app
(:func:`receiver.create_metrics_app`) one over a directory it only reads. When the
exposition has a token the route wants ``Authorization: Bearer <metrics token>`` and answers
401 otherwise.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis
from litestar import Response, get
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.handlers import BaseRouteHandler

import metrics
from ledger import Backlog, Horizon, Ledger
from metrics.state import registration_key
from receiver.auth import bearer_in_headers, secret_bytes
from receiver.errors import ReadUnauthorized
from receiver.spool import Spool

# Litestar appends the charset to a text media type itself.
_MEDIA_TYPE = metrics.CONTENT_TYPE.removesuffix("; charset=utf-8")


@dataclass(frozen=True, slots=True)
class StateSources:
    """What the scrape-time gauges read; a source given as ``None`` is left out.

    ``queue_key`` is the broker's queue key (``<namespace>:<queue>``); ``ledger`` and
    ``redis`` return the (blocking) clients, opened on first use. With
    ``spool_if_present`` the spool is read only while its directory exists (a host whose
    receiver never spooled, or one that runs no receiver, reports no spool at all).
    """

    queue_key: str
    ledger: Callable[[], Ledger] | None = None
    redis: Callable[[], redis.Redis] | None = None
    spool: Spool | None = None
    spool_if_present: bool = False
    #: Where pending ends and unresolved begins, by channel (``None``: everything pending).
    horizon: Horizon | None = None


class Exposition:
    """What ``GET /metrics`` serves: the counted metrics (this process's mode, or only the
    files in ``directory`` when given) plus the scrape-time gauges over ``sources``; and the
    bearer token a scrape needs, if any."""

    def __init__(
        self,
        sources: StateSources,
        *,
        token: str | None = None,
        directory: str | os.PathLike[str] | None = None,
    ) -> None:
        self.sources = sources
        self.token = secret_bytes(token) if token is not None else None
        self.directory = directory

    def render(self) -> bytes:
        """The exposition text. Blocking: call it off the event loop."""
        collector = state_collector(self.sources, counts_of=self.directory)
        return metrics.render([collector], directory=self.directory)


def require_metrics_token(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Guard: the metrics token as a bearer token, when one is configured."""
    exposition: Exposition = connection.app.state.exposition
    if exposition.token is None:
        return
    if not bearer_in_headers(connection.scope["headers"], exposition.token):
        raise ReadUnauthorized


@get("/metrics", guards=[require_metrics_token], sync_to_thread=True, include_in_schema=False)
def scrape(state: State) -> Response[bytes]:
    """The text exposition (format 0.0.4) of every process's metrics and the state gauges."""
    exposition: Exposition = state.exposition
    return Response(exposition.render(), media_type=_MEDIA_TYPE)


def state_collector(
    sources: StateSources, *, counts_of: str | os.PathLike[str] | None = None
) -> metrics.StateCollector:
    """The scrape-time collector over ``sources`` (one ledger query per scrape shared by the
    pending and dead-letter gauges, one for the ledger-kept counters of the owner of
    ``counts_of``, by default this process's metrics directory: none when no worker counts
    there)."""
    pending, dead_letters, recorded = None, None, None
    if sources.ledger is not None:
        pending, dead_letters = _backlog(sources.ledger, sources.horizon)
        recorded = _recorded(sources.ledger, counts_of)
    work_queue = None
    if sources.redis is not None:
        work_queue = functools.partial(_work_queue, sources.redis, sources.queue_key)
    spool = sources.spool
    if spool is not None and sources.spool_if_present and not spool.directory.is_dir():
        spool = None
    registration = None
    if sources.redis is not None:
        registration = functools.partial(
            _registration, sources.redis, sources.queue_key.rsplit(":", 1)[0]
        )
    return metrics.StateCollector(
        registration=registration,
        pending=pending,
        work_queue=work_queue,
        dead_letters=dead_letters,
        spool=None if spool is None else functools.partial(_spooled, spool),
        recorded=recorded,
    )


def _recorded(
    ledger: Callable[[], Ledger], counts_of: str | os.PathLike[str] | None
) -> Callable[[], dict[tuple[str, str, str], int]] | None:
    try:
        owner = metrics.existing_counts_owner(counts_of)
    except OSError as exc:
        error = exc

        def unreadable() -> dict[tuple[str, str, str], int]:
            raise error

        return unreadable  # reported as a source down, with the reason logged
    if owner is None:
        return None
    return lambda: ledger().recorded_counts(owner)


def _backlog(
    ledger: Callable[[], Ledger], horizon: Horizon | None
) -> tuple[Callable[[], dict[str | None, metrics.Pending]], Callable[[], int]]:
    backlog = functools.cache(lambda: ledger().backlog(horizon))

    def pending() -> dict[str | None, metrics.Pending]:
        return _pending(backlog(), datetime.now(UTC))

    def dead_letters() -> int:
        return backlog().dead_letters

    return pending, dead_letters


def _work_queue(client: Callable[[], redis.Redis], queue_key: str) -> int:
    return work_queue_size(client(), queue_key)


def _registration(client: Callable[[], redis.Redis], namespace: str) -> tuple[bool, str] | None:
    """The reconciler's last registration verdict, ``None`` when it has none (off, or expired).
    Raises ``redis.RedisError``."""
    raw = client().get(registration_key(namespace))
    if raw is None:
        return None
    try:
        verdict = json.loads(raw)
        return bool(verdict["ok"]), str(verdict["reason"])
    except (ValueError, KeyError, TypeError):
        return None


def _spooled(spool: Spool) -> int:
    return spool.size().events


def work_queue_size(client: redis.Redis, queue_key: str) -> int:
    """Messages the broker holds for the workers: waiting or in flight (``<queue_key>.msgs``)
    and delayed for a retry (``<queue_key>.DQ.msgs``). Raises ``redis.RedisError``."""
    with client.pipeline(transaction=False) as pipe:
        pipe.hlen(f"{queue_key}.msgs")
        pipe.hlen(f"{queue_key}.DQ.msgs")
        return sum(int(n) for n in pipe.execute())


def _pending(backlog: Backlog, now: datetime) -> dict[str | None, metrics.Pending]:
    found = {
        channel: metrics.Pending(
            count,
            max((now - oldest).total_seconds(), 0.0),
            backlog.unresolved.get(channel, 0),
        )
        for channel, (count, oldest) in backlog.pending.items()
    }
    for channel, count in backlog.unresolved.items():
        found.setdefault(channel, metrics.Pending(0, None, count))
    return found
