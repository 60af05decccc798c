"""The blocking clients of the read API and the metrics scrape: the ledger and a Redis client,
each opened on first use and closed with :meth:`Backends.close`."""

from __future__ import annotations

import threading

import redis

from ledger import Ledger


class Backends:
    """A ledger at ``database_url`` and a blocking Redis client for ``redis_url``, opened on
    first use (so a backend that is down does not stop a process from starting) and shared
    by the threads of one process. A URL given as ``None`` is a backend this process has
    none of: asking for it raises ``LookupError``."""

    def __init__(
        self, *, database_url: str | None, redis_url: str | None, redis_timeout: float
    ) -> None:
        self.database_url = database_url
        self.redis_url = redis_url
        self.redis_timeout = redis_timeout
        self._ledger: Ledger | None = None
        self._redis: redis.Redis | None = None
        self._lock = threading.Lock()

    def ledger(self) -> Ledger:
        """The ledger, opened on first use (without migrating: the workers own the schema).

        Blocking: call from a worker thread. Raises ``ledger.LedgerUnavailable`` or
        ``ValueError`` (bad URL) as :meth:`ledger.Ledger.connect` does.
        """
        if self.database_url is None:
            raise LookupError("no ledger is configured")
        with self._lock:
            if self._ledger is None:
                self._ledger = Ledger.connect(self.database_url, migrate=False)
            return self._ledger

    def redis(self) -> redis.Redis:
        """A blocking Redis client (an event loop's async client is no use in a worker
        thread), created on first use; each call may take ``redis_timeout``."""
        if self.redis_url is None:
            raise LookupError("no Redis is configured")
        with self._lock:
            if self._redis is None:
                timeout = self.redis_timeout
                self._redis = redis.Redis.from_url(
                    self.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout
                )
            return self._redis

    def close(self) -> None:
        """Close what was opened; the next use opens it again."""
        with self._lock:
            if self._ledger is not None:
                self._ledger.close()
                self._ledger = None
            if self._redis is not None:
                self._redis.close()
                self._redis = None
