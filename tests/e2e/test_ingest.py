"""End to end through real processes: POST -> receiver -> Redis -> workers -> ledger -> read API."""

from __future__ import annotations

import stat
from collections.abc import Callable
from typing import Any

import pytest

from simulator import TrafficPlan, plan_traffic
from tests.e2e.sidecar_process import Sidecar, post_all, wait_for

pytestmark = pytest.mark.e2e


def wait_until_recorded(sidecar: Sidecar, plan: TrafficPlan, timeout: float = 120) -> Any:
    def caught_up() -> Any:
        stats = sidecar.read("/v1/stats/webhook")
        done = (
            stats["eventsTotal"] >= plan.unique_events
            and stats["duplicatesTotal"] >= plan.duplicate_events
            and stats["inboundTotal"] >= plan.inbound
        )
        return stats if done else None

    return wait_for(caught_up, timeout=timeout, what="every posted event to be recorded")


def assert_ledger_matches(sidecar: Sidecar, plan: TrafficPlan) -> None:
    stats = wait_until_recorded(sidecar, plan)
    assert stats["eventsTotal"] == plan.unique_events
    assert stats["duplicatesTotal"] == plan.duplicate_events
    assert stats["inboundTotal"] == plan.inbound
    wrong = []
    for message_id, expected in plan.messages.items():
        got = sidecar.read(f"/v1/messages/{message_id}")
        seen = (got["status"], got["eventCount"], got["duplicateCount"], got["readAt"] is not None)
        want = (expected.final_status, expected.events, expected.duplicates, expected.read)
        if seen != want or len(got["events"]) != expected.events:
            wrong.append((message_id, want, seen))
    assert not wrong, f"{len(wrong)} messages differ, first ones: {wrong[:5]}"


def test_up_on_embedded_defaults_records_exactly_the_unique_events_and_final_states(
    make_sidecar: Callable[..., Sidecar],
) -> None:
    # Given the sidecar on its embedded defaults (its own Redis, SQLite under the data dir)
    sidecar = make_sidecar().start()
    # And 2,000 events in all three shapes, 5% resent and 5% of messages reordered
    plan = plan_traffic(events=2000, seed=11, duplicates=0.05, reorder=0.05, inbound_share=0.01)
    assert plan.duplicate_events > 0
    assert plan.reordered_messages > 0

    # When they are posted over HTTP
    result = post_all(sidecar.webhook_url, plan.bodies)

    # Then every request is acknowledged, and the read API shows exactly the unique events,
    # each message's final state, and the duplicates counted exactly
    assert result.statuses == [200] * len(plan.bodies)
    assert_ledger_matches(sidecar, plan)


def test_the_same_holds_on_the_system_redis_and_postgresql(
    make_sidecar: Callable[..., Sidecar], redis_url: str, namespace: str, postgres_url: str
) -> None:
    sidecar = make_sidecar(
        redis_url=redis_url, namespace=namespace, database_url=postgres_url, workers="3"
    ).start()
    plan = plan_traffic(events=2000, seed=12, duplicates=0.05, reorder=0.05, inbound_share=0.01)

    result = post_all(sidecar.webhook_url, plan.bodies)

    assert result.statuses == [200] * len(plan.bodies)
    assert_ledger_matches(sidecar, plan)


def test_what_up_writes_under_the_data_directory_is_private_to_its_user(
    make_sidecar: Callable[..., Sidecar],
) -> None:
    # Given a data directory another version left readable by every local user
    sidecar = make_sidecar()
    sidecar.data_dir.mkdir(mode=0o755)
    sidecar.data_dir.chmod(0o755)
    sidecar.start()
    plan = plan_traffic(events=40, seed=5, duplicates=0.0, reorder=0.0, inbound_share=0.0)

    # When events are received and recorded
    assert post_all(sidecar.webhook_url, plan.bodies).statuses == [200] * len(plan.bodies)
    wait_until_recorded(sidecar, plan)

    # Then the directory is closed to others, and nothing in it (ledger, Redis's append-only
    # files, spool, tokens) is readable by anyone but its owner
    assert stat.S_IMODE(sidecar.data_dir.stat().st_mode) == 0o700
    written = [p for p in sidecar.data_dir.rglob("*") if not p.is_symlink()]
    names = {p.name for p in written}
    assert names >= {"ledger.sqlite3", "appendonly.aof.1.incr.aof", "server.log"}, sorted(names)
    shared = {
        str(p): oct(stat.S_IMODE(p.stat().st_mode)) for p in written if p.stat().st_mode & 0o077
    }
    assert shared == {}
