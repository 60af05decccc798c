"""An exact count of the live traffic a sidecar acknowledged, as the sidecar will count it.

:class:`TrafficSummary` counts unique events by their key ``(message_id, status,
event_time, part)``, duplicates (events that arrive again), per channel and status as the
parser reads them (lower-case): what the ledger and the metrics must show after a run, without
keeping the requests themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from simulator.live import EventKey, TimedRequest


@dataclass(slots=True)
class TrafficSummary:
    """An exact running count of the events acknowledged, as the sidecar counts them.

    Feed it every request that got a 200 through :meth:`acknowledged`; the sender counts
    ``requests`` (HTTP attempts, retries included), ``non_200`` (attempts answered otherwise
    or not at all) and ``given_up`` (requests never acknowledged) itself. Every event key
    seen is kept, to tell a duplicate from a new event: memory grows with the run.
    """

    seed: int = 0
    started_at: datetime | None = None
    ended_at: datetime | None = None
    requests: int = 0
    non_200: int = 0
    given_up: int = 0
    acknowledged_requests: int = 0
    unique_events: int = 0
    duplicates: int = 0
    #: Sends acknowledged by ``/v1/sends`` (unique: a resent one is a duplicate).
    sends: int = 0
    #: Messages whose final status Qlara never posted, told to the fake Qlara.
    dropped: int = 0
    events: dict[str, dict[str, int]] = field(default_factory=dict)
    by_shape: dict[str, dict[str, int]] = field(default_factory=dict)
    _seen: set[EventKey] = field(default_factory=set)
    _messages: dict[str, str] = field(default_factory=dict)

    @property
    def messages(self) -> int:
        """Messages with at least one acknowledged event."""
        return len(self._messages)

    def acknowledged(self, request: TimedRequest) -> None:
        """Count the events of a request the sidecar answered 200 (a ``qlara`` request: the
        message whose final status was dropped, now known to the fake Qlara)."""
        if request.target == "qlara":
            self.dropped += 1
            return
        self.acknowledged_requests += 1
        for event in request.events:
            if event.key in self._seen:
                self.duplicates += 1
                continue
            self._seen.add(event.key)
            self.unique_events += 1
            if request.target == "sends":
                self.sends += 1
            per_channel = self.events.setdefault(event.channel, {})
            per_channel[event.key.status] = per_channel.get(event.key.status, 0) + 1
            shape = self.by_shape.setdefault(event.shape, {"messages": 0, "events": 0})
            shape["events"] += 1
            if event.key.message_id not in self._messages:
                self._messages[event.key.message_id] = event.shape
                shape["messages"] += 1

    def to_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready values (times in ISO 8601, UTC)."""

        def iso(value: datetime | None) -> str | None:
            return None if value is None else value.astimezone(UTC).isoformat()

        return {
            "messages": self.messages,
            "events": {ch: dict(sorted(st.items())) for ch, st in sorted(self.events.items())},
            "unique_events": self.unique_events,
            "duplicates": self.duplicates,
            "sends": self.sends,
            "dropped": self.dropped,
            "by_shape": {shape: dict(v) for shape, v in sorted(self.by_shape.items())},
            "requests": self.requests,
            "acknowledged_requests": self.acknowledged_requests,
            "non_200": self.non_200,
            "given_up": self.given_up,
            "seed": self.seed,
            "started_at": iso(self.started_at),
            "ended_at": iso(self.ended_at),
        }
