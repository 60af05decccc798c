"""The receiver's per-process resources, built with the app and started in its lifespan."""

from __future__ import annotations

import redis
import structlog

from ledger import Ledger
from receiver.auth import WebhookGuard, secret_bytes
from receiver.backends import Backends
from receiver.config import ReceiverConfig
from receiver.drain import SpoolDrainer
from receiver.enqueue import RedisEnqueuer
from receiver.outcomes import Outcomes
from receiver.rejects import RejectLog
from receiver.scrape import StateSources
from receiver.spool import Spool
from receiver.throttle import FailureThrottle

log = structlog.get_logger(__name__)


class Runtime:
    """Config, checks, spool, reject log and counters (ready once built), and the Redis
    enqueuer, spool drainer, ledger and the scrape's Redis client (bound to the event loop
    or opened on first use, see :class:`~receiver.backends.Backends`).

    Lives on ``app.state.runtime``; :meth:`start` and :meth:`stop` run in the app's lifespan.
    """

    def __init__(self, config: ReceiverConfig) -> None:
        self.config = config
        self.guard = WebhookGuard(config)
        self.throttle = FailureThrottle()
        self.read_token = secret_bytes(config.read_token)
        #: ``POST /v1/sends``'s bearer token; ``None``: every send is refused (401).
        self.send_token = None if config.send_token is None else secret_bytes(config.send_token)
        self.spool = Spool(config.spool_dir)
        self.rejects = RejectLog(config.rejects_dir, config.reject_log_max_bytes)
        self.outcomes = Outcomes()
        self.send_outcomes = Outcomes()
        self.enqueuer: RedisEnqueuer | None = None
        self.drainer: SpoolDrainer | None = None
        self.backends = Backends(
            database_url=config.database_url,
            redis_url=config.redis_url,
            redis_timeout=config.redis_timeout,
        )

    async def start(self) -> None:
        """Connect to Redis (lazily, bounded by the configured timeouts) and start draining."""
        config = self.config
        self.enqueuer = RedisEnqueuer(
            config.redis_url,
            config.namespace,
            timeout=config.redis_timeout,
            deadline=config.enqueue_deadline,
        )
        self.drainer = SpoolDrainer(self.spool, self.enqueuer, config.spool_drain_interval)
        self.drainer.start()

    async def stop(self) -> None:
        """Stop draining, seal this process's spool segment, close Redis and the ledger."""
        if self.drainer is not None:
            await self.drainer.stop()
            self.drainer = None
        if self.enqueuer is not None:
            await self.enqueuer.aclose()
            self.enqueuer = None
        self.backends.close()

    def ledger(self) -> Ledger:
        """The ledger, opened on first use (without migrating: the workers own the schema).

        Blocking: call from a worker thread. Raises ``ledger.LedgerUnavailable`` or
        ``ValueError`` (bad URL) as :meth:`ledger.Ledger.connect` does.
        """
        return self.backends.ledger()

    def scrape_redis(self) -> redis.Redis:
        """A blocking Redis client for the metrics scrape (the enqueuer's client belongs to
        the event loop), created on first use; each call may take ``redis_timeout``."""
        return self.backends.redis()

    def state_sources(self) -> StateSources:
        """What the scrape-time gauges read: this process's ledger, Redis and spool."""
        config = self.config
        return StateSources(
            queue_key=f"{config.namespace}:{config.queue_name}",
            ledger=self.ledger,
            redis=self.scrape_redis,
            spool=self.spool,
            horizon=config.expiry_horizon,
        )
