"""Live traffic: reproducible, counted exactly as the parser reads it, imperfect as asked."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from qlara import parse_body
from simulator import (
    ErrorBurst,
    TimedRequest,
    TrafficOptions,
    TrafficSummary,
    live_traffic,
    parse_bursts,
)

START = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


def traffic(**options: object) -> list[TimedRequest]:
    given: dict[str, object] = {"rate": 100.0, "seed": 7, "messages": 1500, "start": START}
    given.update(options)
    return list(live_traffic(TrafficOptions(**given)))  # type: ignore[arg-type]


def parsed_counts(requests: list[TimedRequest]) -> tuple[int, int, Counter[tuple[str, str]]]:
    """Unique events, duplicates and (channel, status) counts, as parse_body reads the bodies."""
    seen: set[tuple[str, str, datetime, int]] = set()
    duplicates = 0
    by_channel: Counter[tuple[str, str]] = Counter()
    for request in requests:
        for event in parse_body(request.body).events:
            key = (event.message_id, event.status, event.event_time, event.part)
            if key in seen:
                duplicates += 1
                continue
            seen.add(key)
            by_channel[(event.channel or "", event.status)] += 1
    return len(seen), duplicates, by_channel


def test_the_same_seed_makes_the_same_traffic_byte_for_byte() -> None:
    first = traffic(duplicates=0.05, reorder=0.05)
    again = traffic(duplicates=0.05, reorder=0.05)
    other = traffic(duplicates=0.05, reorder=0.05, seed=8)

    assert [(r.at, r.body) for r in first] == [(r.at, r.body) for r in again]
    assert [r.body for r in first] != [r.body for r in other]


def test_the_summary_counts_exactly_what_parse_body_reads_from_the_bodies() -> None:
    # Given traffic with resends, late events and JSON arrays in every shape
    requests = traffic(duplicates=0.1, reorder=0.1, batch_share=0.2)
    # When every request is acknowledged
    summary = TrafficSummary()
    for request in requests:
        summary.acknowledged(request)
    # Then the summary's counts are the parser's, key for key
    unique, duplicates, by_channel = parsed_counts(requests)
    assert summary.unique_events == unique
    assert summary.duplicates == duplicates > 0
    assert {
        (channel, status): n
        for channel, statuses in summary.events.items()
        for status, n in statuses.items()
    } == dict(by_channel)
    assert summary.messages == 1500
    assert sum(s["events"] for s in summary.by_shape.values()) == unique
    assert sum(s["messages"] for s in summary.by_shape.values()) == 1500


def test_every_shape_channel_and_status_the_issue_names_appears() -> None:
    requests = traffic(duplicates=0.0)
    summary = TrafficSummary()
    for request in requests:
        summary.acknowledged(request)

    assert set(summary.by_shape) == {"A", "B", "C"}
    assert set(summary.events) == {"sms", "rcs", "whatsapp"}
    statuses = {status for per_channel in summary.events.values() for status in per_channel}
    assert statuses == {"sent", "delivered", "error", "expired", "read"}
    assert "read" not in summary.events["sms"]


def test_error_events_carry_a_realistic_error_text() -> None:
    errors = [
        event
        for request in traffic()
        for event in parse_body(request.body).events
        if event.status == "error"
    ]
    assert errors
    assert all(event.error for event in errors)


def test_requests_come_in_posting_order_and_end_with_the_messages() -> None:
    requests = traffic()
    times = [r.at for r in requests]
    assert times == sorted(times)
    assert len({e.key.message_id for r in requests for e in r.events}) == 1500


def test_only_the_shapes_and_channels_asked_for_are_sent() -> None:
    summary = TrafficSummary()
    for request in traffic(shapes=("A",), channels=("whatsapp",), messages=200):
        summary.acknowledged(request)
    assert set(summary.by_shape) == {"A"}
    assert set(summary.events) == {"whatsapp"}


def test_the_duplicate_share_is_roughly_the_one_asked_for() -> None:
    requests = traffic(duplicates=0.1)
    resent = sum(r.resend for r in requests)
    fresh = len(requests) - resent
    assert 0.06 < resent / fresh < 0.14
    # A resend is a request posted before, unchanged
    bodies = {r.body for r in requests if not r.resend}
    assert all(r.body in bodies for r in requests if r.resend)


def test_the_reorder_share_is_roughly_the_one_asked_for() -> None:
    # Given messages of two events or more, some posted with their first event last
    requests = traffic(reorder=0.2, duplicates=0.0)
    posted: dict[str, list[datetime]] = {}
    for request in requests:
        for event in request.events:
            posted.setdefault(event.key.message_id, []).append(event.key.event_time)
    several = [times for times in posted.values() if len(times) > 1]
    # Then about that share arrive out of their event-time order
    reordered = sum(times != sorted(times) for times in several)
    assert 0.12 < reordered / len(several) < 0.28


def test_without_reordering_every_message_arrives_in_event_time_order() -> None:
    posted: dict[str, list[datetime]] = {}
    for request in traffic(reorder=0.0):
        for event in request.events:
            posted.setdefault(event.key.message_id, []).append(event.key.event_time)
    assert all(times == sorted(times) for times in posted.values())


def test_an_error_burst_raises_the_error_share_in_its_window() -> None:
    # Given a burst from second 5 to second 10 of a 15-second run
    requests = traffic(
        messages=2500, rate=200.0, error_bursts=(ErrorBurst(at_s=5.0, length_s=5.0),)
    )
    inside = Counter[str]()
    outside = Counter[str]()
    for request in requests:
        for event in parse_body(request.body).events:
            if event.status in ("delivered", "error", "expired") and event.part == 1:
                second = (event.event_time - START) / timedelta(seconds=1)
                (inside if 5.5 <= second < 9.5 else outside)[event.status] += 1
    # Then most finals in the window are errors, and few outside it
    assert inside["error"] / sum(inside.values()) > 0.6
    assert outside["error"] / sum(outside.values()) < 0.2


def test_the_pace_follows_the_rate() -> None:
    requests = traffic(rate=50.0, messages=1000, duplicates=0.0)
    events = sum(len(r.events) for r in requests)
    sent_for = max(e.key.event_time for r in requests for e in r.events if e.key.status == "sent")
    seconds = (sent_for - START) / timedelta(seconds=1)
    assert 0.7 < events / seconds / 50.0 < 1.3


def test_endless_traffic_keeps_coming() -> None:
    stream = live_traffic(TrafficOptions(rate=10.0, seed=1, start=START))
    first = [next(stream) for _ in range(500)]
    assert first[-1].at > first[0].at


def test_error_bursts_are_read_from_at_seconds_share() -> None:
    assert parse_bursts(["60:30", "120", "0:10:0.95"]) == (
        ErrorBurst(60.0, 30.0, 0.8),
        ErrorBurst(120.0, 30.0, 0.8),
        ErrorBurst(0.0, 10.0, 0.95),
    )


@pytest.mark.parametrize("spec", ["", "x", "1:2:3:4", "-5:10", "5:0", "5:10:1.5"])
def test_an_unreadable_error_burst_is_refused_naming_it(spec: str) -> None:
    with pytest.raises(ValueError, match="AT"):
        parse_bursts([spec])


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("rate", 0.0),
        ("duplicates", 1.5),
        ("shapes", ("D",)),
        ("channels", ("fax",)),
        ("time_scale", 0.0),
    ],
)
def test_impossible_options_are_refused(option: str, value: object) -> None:
    with pytest.raises(ValueError, match=option.split("_")[0]):
        TrafficOptions(**{option: value})  # type: ignore[arg-type]


def test_shape_c_alone_needs_the_sms_channel() -> None:
    with pytest.raises(ValueError, match="sms"):
        TrafficOptions(shapes=("C",), channels=("whatsapp",))


def test_sends_reported_and_finals_dropped_are_what_the_sidecar_and_qlara_will_see() -> None:
    import json

    from qlara import parse_sends

    # Given traffic where the application reports its sends and 20% of finals are dropped
    requests = traffic(messages=400, report_sends=True, drop=0.2, duplicates=0.05, batch_share=0.3)
    by_target = Counter(r.target for r in requests)
    sends = [r for r in requests if r.target == "sends"]
    truths = [json.loads(r.body)[0] for r in requests if r.target == "qlara"]
    webhooks = [r for r in requests if r.target == "webhook"]

    # Then every message is reported once, before anything Qlara posts about it
    sent_ids = [e.message_id for r in sends for e in parse_sends(r.body).events]
    assert sorted(sent_ids) == sorted(set(sent_ids))
    assert len(sent_ids) == 400
    first_seen: dict[str, str] = {}
    for request in requests:
        for event in request.events:
            first_seen.setdefault(event.key.message_id, request.target)
    assert set(first_seen.values()) == {"sends"}
    # and a request never mixes targets (each body parses as its own kind)
    assert all(parse_sends(r.body).events for r in sends)
    assert all(not parse_body(r.body).rejected for r in webhooks)
    # A dropped message has no final status posted, and Qlara knows its truth instead
    dropped = {t["messageId"] for t in truths}
    assert 40 <= len(dropped) <= 120  # about 20% of 400
    assert by_target["qlara"] == len(dropped)
    finals = {
        e.message_id
        for r in webhooks
        for e in parse_body(r.body).events
        if e.status in {"delivered", "error", "expired"}
    }
    assert not finals & dropped
    assert all(t["status"] in {"DELIVERED", "ERROR", "EXPIRED"} for t in truths)
    # And the summary counts the sends as events and the dropped messages apart
    summary = TrafficSummary()
    for request in requests:
        summary.acknowledged(request)
    assert summary.dropped == len(dropped)
    keys = {
        (e.message_id, e.status, e.event_time, e.part)
        for r in requests
        if r.target != "qlara"
        for e in (parse_sends(r.body) if r.target == "sends" else parse_body(r.body)).events
    }
    # (a send timed at the same millisecond as Qlara's SENT is the same event, for both)
    assert summary.unique_events == len(keys)
    assert 390 <= summary.sends <= 400
