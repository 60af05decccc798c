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
#: The spool counts as accepting while its disk has room for this many of the largest bodies.
SPOOL_ROOM_BODIES = 16


@get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive and serving: 200 ``{"status": "ok"}``."""
    return {"status": "ok"}


@get("/readyz")
async def readyz(state: State) -> Response[dict[str, Any]]:
    """Whether a webhook gets a 200 now: Redis takes it, or else the spool does.

    200 when either can, else 503::

        {"status": "ready"|"unavailable", "redis": bool, "database": bool,
         "spool": {"events": int, "bytes": int, "accepting": bool}}

    The database is reported, not required: the workers record what waits in Redis once
    it is back, and a load balancer that cut Qlara off then would lose what the spool is
    there to keep. ``spool`` counts the messages of this host's spool not yet moved to
    Redis; ``accepting`` says whether it could take one now (a writable directory with room
    for several bodies).
    """
    runtime: Runtime = state.runtime
    redis_ok, database_ok, spool, spool_ok = await asyncio.gather(
        _redis_ok(runtime),
        _database_ok(runtime),
        asyncio.to_thread(_spool_size, runtime),
        asyncio.to_thread(
            runtime.spool.accepting, SPOOL_ROOM_BODIES * runtime.config.max_body_bytes
        ),
    )
    ready = redis_ok or spool_ok
    return Response(
        {
            "status": "ready" if ready else "unavailable",
            "redis": redis_ok,
            "database": database_ok,
            "spool": {"events": spool.events, "bytes": spool.bytes, "accepting": spool_ok},
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
