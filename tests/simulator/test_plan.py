"""Planned traffic: reproducible, and what it promises is what the parser reads from it."""

from __future__ import annotations

from collections import Counter, defaultdict

from qlara import DeliveryEvent, parse_body, reduce_state
from simulator import TrafficPlan, plan_traffic


def plan(**options: object) -> TrafficPlan:
    given: dict[str, object] = {"events": 1500, "seed": 5}
    given.update(options)
    return plan_traffic(**given)  # type: ignore[arg-type]


def test_the_same_seed_makes_the_same_plan_byte_for_byte() -> None:
    first = plan(duplicates=0.05, reorder=0.05, inbound_share=0.02)
    again = plan(duplicates=0.05, reorder=0.05, inbound_share=0.02)
    other = plan(duplicates=0.05, reorder=0.05, inbound_share=0.02, seed=6)

    assert first.bodies == again.bodies
    assert first.messages == again.messages
    assert first.bodies != other.bodies


def test_what_the_plan_promises_is_what_parse_body_reads_from_its_bodies() -> None:
    # Given a plan with resends, reversed messages, JSON arrays and replies
    planned = plan(duplicates=0.1, reorder=0.1, batch_share=0.3, inbound_share=0.05)
    # When every body is read as the receiver reads it
    by_message: defaultdict[str, list[DeliveryEvent]] = defaultdict(list)
    seen: set[tuple[object, ...]] = set()
    duplicates = inbound = 0
    for body in planned.bodies:
        parsed = parse_body(body)
        assert not parsed.rejected
        inbound += len(parsed.inbound)
        for event in parsed.events:
            key = (event.message_id, event.status, event.event_time, event.part)
            if key in seen:
                duplicates += 1
                continue
            seen.add(key)
            by_message[event.message_id].append(event)
    # Then the counts and every message's final state are the plan's
    assert len(seen) == planned.unique_events >= 1500
    assert duplicates == planned.duplicate_events > 0
    assert inbound == planned.inbound + planned.duplicate_inbound
    assert set(by_message) == set(planned.messages)
    for message_id, events in by_message.items():
        expected = planned.messages[message_id]
        state = reduce_state(events)
        assert state.status == expected.final_status, message_id
        assert len(events) == expected.events
        assert (state.read_at is not None) == expected.read


def test_every_shape_and_channel_is_planned_unless_narrowed() -> None:
    shapes = Counter(m.shape for m in plan().messages.values())
    channels = Counter(m.channel for m in plan().messages.values())
    assert set(shapes) == {"A", "B", "C"}
    assert set(channels) == {"sms", "rcs", "whatsapp"}

    narrowed = plan(shapes=("B",), channels=("whatsapp",)).messages.values()
    assert {(m.shape, m.channel) for m in narrowed} == {("B", "whatsapp")}
