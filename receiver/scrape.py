"""``GET /metrics``: the Prometheus exposition of the whole sidecar.

Every receiver and worker process counts into the shared multiprocess directory (see
:mod:`metrics.multiproc`); a scrape merges them and adds what is waiting now: pending
messages and dead letters from the ledger (through its indexes), the broker's backlog from
Redis, the local spool. A backend that does not answer leaves its samples out
(``qlara_scrape_source_up{source} 0``); the scrape itself still answers 200.

When ``ReceiverConfig.metrics_token`` is set the route wants ``Authorization: Bearer
<metrics token>`` and answers 401 otherwise.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

from litestar import Response, get
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.handlers import BaseRouteHandler

import metrics
from ledger import Backlog
from receiver.auth import bearer_in_headers
from receiver.errors import ReadUnauthorized
from receiver.runtime import Runtime

# Litestar appends the charset to a text media type itself.
_MEDIA_TYPE = metrics.CONTENT_TYPE.removesuffix("; charset=utf-8")


def require_metrics_token(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Guard: the metrics token as a bearer token, when one is configured."""
    runtime: Runtime = connection.app.state.runtime
    if runtime.metrics_token is None:
        return
    if not bearer_in_headers(connection.scope["headers"], runtime.metrics_token):
        raise ReadUnauthorized


@get("/metrics", guards=[require_metrics_token], sync_to_thread=True, include_in_schema=False)
def scrape(state: State) -> Response[bytes]:
    """The text exposition (format 0.0.4) of every process's metrics and the state gauges."""
    runtime: Runtime = state.runtime
    body = metrics.render([state_collector(runtime)])
    return Response(body, media_type=_MEDIA_TYPE)


def state_collector(runtime: Runtime) -> metrics.StateCollector:
    """The scrape-time collector over ``runtime``'s ledger, Redis and spool (one ledger
    query per scrape, shared by the pending and dead-letter gauges)."""
    backlog = functools.cache(lambda: runtime.ledger().backlog())

    def pending() -> dict[str | None, metrics.Pending]:
        return _pending(backlog(), datetime.now(UTC))

    return metrics.StateCollector(
        pending=pending,
        work_queue=lambda: work_queue_size(runtime),
        dead_letters=lambda: backlog().dead_letters,
        spool=lambda: runtime.spool.size().events,
    )


def work_queue_size(runtime: Runtime) -> int:
    """Messages the broker holds for the workers: waiting or in flight (``<ns>:<queue>.msgs``)
    and delayed for a retry (``<ns>:<queue>.DQ.msgs``). Raises ``redis.RedisError``."""
    config = runtime.config
    key = f"{config.namespace}:{config.queue_name}"
    with runtime.scrape_redis().pipeline(transaction=False) as pipe:
        pipe.hlen(f"{key}.msgs")
        pipe.hlen(f"{key}.DQ.msgs")
        return sum(int(n) for n in pipe.execute())


def _pending(backlog: Backlog, now: datetime) -> dict[str | None, metrics.Pending]:
    return {
        channel: metrics.Pending(count, max((now - oldest).total_seconds(), 0.0))
        for channel, (count, oldest) in backlog.pending.items()
    }
