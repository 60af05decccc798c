"""Liveness and readiness, for supervisors and load balancers (no token needed)."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Response, get
from litestar.datastructures import State

from receiver.runtime import Runtime
from receiver.spool import SpoolSize

#: Seconds the database ping may take before the receiver is reported not ready.
DATABASE_PING_TIMEOUT = 1.0


@get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive and serving: 200 ``{"status": "ok"}``."""
    return {"status": "ok"}


@get("/readyz")
async def readyz(state: State) -> Response[dict[str, Any]]:
    """Whether Redis and the database answer, and what waits in the spool.

    200 when both answer, else 503::

        {"status": "ready"|"unavailable", "redis": bool, "database": bool,
         "spool": {"events": int, "bytes": int}}

    ``spool`` counts the messages of this host's spool not yet moved to Redis.
    """
    runtime: Runtime = state.runtime
    redis_ok, database_ok, spool = await asyncio.gather(
        _redis_ok(runtime), _database_ok(runtime), asyncio.to_thread(_spool_size, runtime)
    )
    ready = redis_ok and database_ok
    return Response(
        {
            "status": "ready" if ready else "unavailable",
            "redis": redis_ok,
            "database": database_ok,
            "spool": {"events": spool.events, "bytes": spool.bytes},
        },
        status_code=200 if ready else 503,
    )


async def _redis_ok(runtime: Runtime) -> bool:
    return runtime.enqueuer is not None and await runtime.enqueuer.ping()


async def _database_ok(runtime: Runtime) -> bool:
    def ping() -> None:
        runtime.ledger().ping()

    try:
        async with asyncio.timeout(DATABASE_PING_TIMEOUT):
            await asyncio.to_thread(ping)
    except Exception:  # any failure means not ready; the reason is not the caller's business
        return False
    return True


def _spool_size(runtime: Runtime) -> SpoolSize:
    try:
        return runtime.spool.size()
    except OSError:
        return SpoolSize(0, 0)
