"""The :class:`Ledger`: the one object the other packages use to reach the durable record."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timedelta

import structlog
from sqlalchemy import Engine, text

from ledger import counting, dead_letter_store, places, polling, reading, recording, rollup, stats
from ledger import purge as retention
from ledger.counting import CountKey, Tally
from ledger.engine import WRITE_OPTION, build_engine
from ledger.errors import LedgerUnavailable, unavailable_on_operational_errors
from ledger.migrate import upgrade_to_head
from ledger.results import (
    Backlog,
    DeadLetter,
    LedgerCounts,
    MessageDetail,
    MessagePage,
    PurgeResult,
    RecordResult,
    WebhookStats,
)
from ledger.timestamps import require_aware, utc_now
from qlara import Receipt

_log = structlog.get_logger()


#: How long :meth:`Ledger.migrate` waits, in all, for another process's migration (s).
MIGRATE_WAIT_S = 60.0


class Ledger:
    """The durable record of receipts, events, messages, inbound replies and dead letters.

    Thread-safe: one instance is shared by all threads of a process. Every method raises
    :class:`ledger.LedgerUnavailable` when the database cannot serve it now (down,
    unreachable, locked past the busy timeout, deadlock victim); the call changed nothing
    and may be retried. Other errors propagate unchanged.
    """

    def __init__(self, engine: Engine) -> None:
        """Wrap an engine built by :func:`ledger.engine.build_engine`; use :meth:`connect`."""
        self._engine = engine
        self._writer = engine.execution_options(**{WRITE_OPTION: True})

    @classmethod
    def connect(cls, url: str, *, migrate: bool = True) -> Ledger:
        """Open the ledger at ``url`` (``sqlite:///PATH`` or a PostgreSQL URL), upgrading its
        schema first unless ``migrate`` is false.

        Raises ``ValueError`` for an unsupported URL, :class:`ledger.LedgerUnavailable` when
        migrating fails for want of a database.
        """
        ledger = cls(build_engine(url))
        if migrate:
            try:
                ledger.migrate()
            except BaseException:
                ledger.close()
                raise
        return ledger

    def migrate(self) -> None:
        """Upgrade the schema to the latest migration. Idempotent; safe to run from several
        processes at once (they take turns).

        On SQLite a process that finds the file locked for longer than the busy timeout (the
        other's migration is slow, on a loaded disk) tries again, for up to
        ``MIGRATE_WAIT_S`` in all.
        """
        deadline = time.monotonic() + MIGRATE_WAIT_S
        while True:
            try:
                with unavailable_on_operational_errors():
                    upgrade_to_head(self._engine)
                return
            except LedgerUnavailable as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def close(self) -> None:
        """Close every pooled connection. The ledger must not be used afterwards."""
        self._engine.dispose()

    def ping(self) -> None:
        """Run ``SELECT 1``. Raises :class:`ledger.LedgerUnavailable` when that fails."""
        with unavailable_on_operational_errors(), self._engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def record(self, receipt: Receipt) -> RecordResult:
        """Record a receipt in one transaction (see :mod:`ledger.recording` for the rules).

        Recording a receipt id a second time changes nothing and returns
        ``already_recorded=True``.
        """
        with unavailable_on_operational_errors(), self._writer.begin() as conn:
            result = recording.record_receipt(conn, receipt, utc_now())
        if result.already_recorded:
            _log.debug("ledger.receipt_already_recorded", receipt_id=receipt.receipt_id)
        return result

    def record_many(
        self, batch: Sequence[Receipt], *, tally: Tally | None = None
    ) -> list[RecordResult]:
        """Record receipts in one transaction: one result per receipt, in order, each what
        :meth:`record` would have returned had they been recorded one by one in that order
        (a receipt id repeated in ``batch`` is ``already_recorded`` after its first). With
        ``tally``, what they count is added to its rows in the same transaction
        (:mod:`ledger.counting`).

        The batch is all or nothing, counts included: when it raises, nothing of it was
        recorded.
        """
        if not batch:
            return []
        with unavailable_on_operational_errors(), self._writer.begin() as conn:
            results = recording.record_receipts(conn, batch, utc_now())
            if tally is not None:
                counting.add_counts(conn, tally, batch, results)
        return results

    def recorded_counts(self, owner: str) -> dict[CountKey, int]:
        """What the writers of ``owner`` counted as they recorded, summed over them:
        (metric, label, label) -> count (:mod:`ledger.counting`)."""
        with unavailable_on_operational_errors(), self._engine.begin() as conn:
            return counting.read_counts(conn, owner)

    def get_message(self, message_id: str) -> MessageDetail | None:
        """A message's state and events, or ``None`` when unknown."""
        with unavailable_on_operational_errors(), self._engine.begin() as conn:
            return reading.get_message(conn, message_id)

    def list_messages(
        self,
        *,
        customer_message_id: str | None = None,
        phone: str | None = None,
        status: str | None = None,
        channel: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> MessagePage:
        """Messages newest update first, filtered and paginated; see
        :func:`ledger.reading.list_messages` for how each filter matches.

        Raises ``ValueError`` for a limit below 1, a naive datetime or a foreign cursor.
        """
        with unavailable_on_operational_errors(), self._engine.begin() as conn:
            return reading.list_messages(
                conn,
                customer_message_id=customer_message_id,
                phone=phone,
                status=status,
                channel=channel,
                since=since,
                until=until,
                limit=limit,
                cursor=cursor,
            )

    def webhook_stats(self, now: datetime | None = None) -> WebhookStats:
        """Traffic numbers as of ``now`` (default: the current time; must be timezone-aware)."""
        at = utc_now() if now is None else require_aware(now, "now")
        with unavailable_on_operational_errors(), self._engine.begin() as conn:
            return stats.webhook_stats(conn, at)

    def last_event_at(self) -> dict[str, datetime]:
        """When each channel's newest event from Qlara was received (``"other"``: events
        without a channel); the application's sends do not count."""
        with unavailable_on_operational_errors(), self._engine.begin() as conn:
            return stats.last_event_at(conn)

    def top_countries(self, since: datetime, limit: int) -> list[str]:
        """The destination countries with the most messages changed since ``since``."""
        with unavailable_on_operational_errors(), self._engine.begin() as conn:
            return stats.top_countries(conn, require_aware(since, "since"), limit)

    def due_polls(
        self,
        *,
        after: stats.Horizon,
        horizon: stats.Horizon,
        max_polls: int,
        limit: int,
        now: datetime | None = None,
    ) -> list[polling.DuePoll]:
        """The messages due for a poll of Qlara's status API (see :mod:`ledger.polling`)."""
        with unavailable_on_operational_errors(), self._engine.begin() as conn:
            return polling.due_polls(
                conn,
                now if now is not None else utc_now(),
                after=after,
                horizon=horizon,
                max_polls=max_polls,
                limit=limit,
            )

    def note_polls(
        self,
        results: Sequence[tuple[polling.DuePoll, str]],
        backoff: timedelta,
        now: datetime | None = None,
    ) -> None:
        """Count a poll of each message with its result, and when the next may come."""
        with unavailable_on_operational_errors(), self._writer.begin() as conn:
            polling.note_polls(conn, results, now if now is not None else utc_now(), backoff)

    def backlog(self, horizon: stats.Horizon | None = None) -> Backlog:
        """Pending messages per channel (those sent before ``horizon``, when given, counted
        apart as unresolved) and dead letters not yet redriven, read from indexes (cheap
        whatever the ledger's size); see :class:`ledger.Backlog`."""
        with unavailable_on_operational_errors(), self._engine.begin() as conn:
            return stats.backlog(conn, horizon)

    def add_dead_letter(
        self, *, payload: str, reason: str, attempts: int, receipt_id: str | None = None
    ) -> int:
        """Keep a receipt the workers gave up on, with the reason; returns its id."""
        with unavailable_on_operational_errors(), self._writer.begin() as conn:
            dead_letter_id = dead_letter_store.add_dead_letter(
                conn,
                payload=payload,
                reason=reason,
                attempts=attempts,
                receipt_id=receipt_id,
                now=utc_now(),
            )
        _log.warning(
            "ledger.dead_letter_added",
            dead_letter_id=dead_letter_id,
            receipt_id=receipt_id,
            attempts=attempts,
        )
        return dead_letter_id

    def dead_letters(
        self, *, include_redriven: bool = False, limit: int = 1000
    ) -> list[DeadLetter]:
        """Dead letters oldest first; those already redriven only when asked."""
        with unavailable_on_operational_errors(), self._engine.begin() as conn:
            return dead_letter_store.list_dead_letters(
                conn, include_redriven=include_redriven, limit=limit
            )

    def mark_redriven(self, dead_letter_id: int) -> None:
        """Record that a dead letter was sent back for another try. Marking it again keeps
        the first time. Raises ``KeyError`` for an unknown id."""
        with unavailable_on_operational_errors(), self._writer.begin() as conn:
            dead_letter_store.mark_redriven(conn, dead_letter_id, utc_now())

    def purge(self, older_than: datetime) -> PurgeResult:
        """Delete what is older than ``older_than`` (timezone-aware); safe while writers run.
        See :func:`ledger.purge.purge` for what goes."""
        cut_off = require_aware(older_than, "older_than")
        with unavailable_on_operational_errors():
            result = retention.purge(self._writer, cut_off)
        _log.info(
            "ledger.purged",
            older_than=cut_off.isoformat(),
            events=result.events,
            messages=result.messages,
            inbound=result.inbound,
            receipts=result.receipts,
            dead_letters=result.dead_letters,
        )
        return result

    def compact_minutes(self, now: datetime | None = None) -> int:
        """Collapse each passed minute's rows of per-minute event counts into one (see
        :mod:`ledger.rollup`), for the minutes from ``COMPACT_LOOKBACK`` to
        ``COMPACT_AFTER`` before ``now``, and each key's rows of the per-hour message counts
        of the last hours (:mod:`ledger.places`). Returns how many rows went; counts never
        change.
        Safe while writers run, and beside another compaction."""
        at = require_aware(now, "now") if now is not None else utc_now()
        before = rollup.minute_of(at - rollup.COMPACT_AFTER)
        with unavailable_on_operational_errors(), self._writer.begin() as conn:
            removed = rollup.compact(conn, before - rollup.COMPACT_LOOKBACK, before)
        # The current hour too: the explorer reads only whole hours from there, but writers
        # append to it all hour long
        hour = places.hour_of(at)
        with unavailable_on_operational_errors(), self._writer.begin() as conn:
            removed += places.compact(conn, hour - places.COMPACT_LOOKBACK, hour + places.HOUR)
        return removed

    def counts(self) -> LedgerCounts:
        """Row counts and duplicate sums, for tests and operators."""
        with unavailable_on_operational_errors(), self._engine.begin() as conn:
            return stats.ledger_counts(conn)
