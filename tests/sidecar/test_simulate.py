"""`qlara-sidecar simulate` and `demo`: what is posted is what is counted, and what is recorded."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from qlara import parse_body
from sidecar.simulate import Sender, SendOptions, WebhookRefused
from simulator import TrafficOptions, TrafficSummary, live_traffic
from tests.e2e.sidecar_process import Sidecar, children_of, free_port, sidecar_env, wait_for
from tests.e2e.test_sends import metric
from tests.sidecar.support import environment_without_settings

URL = "http://sidecar.test/webhook/simulated-token-0123456789"
START = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
Handler = Callable[[httpx.Request], httpx.Response]


def quick_traffic(**options: object) -> TrafficOptions:
    """Traffic whose every delay is a fraction of a millisecond: tests need not wait for it."""
    given: dict[str, object] = {"rate": 5000.0, "seed": 3, "messages": 40, "time_scale": 1e-5}
    given.update(options)
    return TrafficOptions(start=START, **given)  # type: ignore[arg-type]


def send(
    traffic: TrafficOptions,
    handler: Handler,
    stop: asyncio.Event | None = None,
    summary: TrafficSummary | None = None,
    **options: object,
) -> TrafficSummary:
    """Run a Sender against ``handler`` in place of the network; return its summary."""
    summary = TrafficSummary() if summary is None else summary
    given: dict[str, object] = {"url": URL, "rate": 1e6, "progress": "none", "backoff_s": 0.001}
    given.update(options)

    async def main() -> None:
        sender = Sender(
            SendOptions(**given),  # type: ignore[arg-type]
            summary,
            stop or asyncio.Event(),
            transport=httpx.MockTransport(handler),
        )
        await sender.run(live_traffic(traffic))

    asyncio.run(main())
    return summary


def parsed(bodies: list[bytes]) -> tuple[int, int]:
    """(unique events, duplicates) as the ledger counts them, from the bodies it got."""
    seen: set[tuple[str, str, datetime, int]] = set()
    duplicates = 0
    for body in bodies:
        for event in parse_body(body).events:
            key = (event.message_id, event.status, event.event_time, event.part)
            duplicates += key in seen
            seen.add(key)
    return len(seen), duplicates


# The sender, against a stand-in webhook --------------------------------------------------------


def test_the_summary_counts_exactly_the_events_of_the_acknowledged_bodies() -> None:
    # Given a webhook that refuses the first attempt of every third body (once each, so
    # that however the concurrent requests interleave, a retry always gets through)
    received: list[bytes] = []
    refused: set[bytes] = set()
    bodies: set[bytes] = set()
    answered = 0

    def webhook(request: httpx.Request) -> httpx.Response:
        nonlocal answered
        answered += 1
        body = request.content
        if body not in bodies:
            bodies.add(body)
            if len(bodies) % 3 == 0:
                refused.add(body)
                return httpx.Response(503)
        received.append(body)
        return httpx.Response(200, json={"status": "received"})

    # When traffic with resends, late events and arrays is posted
    summary = send(quick_traffic(duplicates=0.1, reorder=0.1, batch_share=0.2), webhook)

    # Then the summary is what the acknowledged bodies hold, and the refusals are counted
    assert (summary.unique_events, summary.duplicates) == parsed(received)
    assert summary.duplicates > 0
    assert summary.messages == 40
    assert summary.non_200 == answered - len(received) == len(refused) > 0
    assert summary.requests == answered
    assert summary.given_up == 0


def test_a_request_answered_503_is_retried_until_it_gets_a_200() -> None:
    attempts: dict[bytes, int] = {}

    def webhook(request: httpx.Request) -> httpx.Response:
        attempts[request.content] = attempts.get(request.content, 0) + 1
        return httpx.Response(200 if attempts[request.content] == 3 else 503)

    summary = send(quick_traffic(messages=10), webhook)

    assert set(attempts.values()) == {3}
    assert summary.acknowledged_requests == len(attempts)
    assert summary.non_200 == 2 * len(attempts)
    assert summary.unique_events == parsed(list(attempts))[0]


def test_a_request_never_acknowledged_is_given_up_and_not_counted() -> None:
    summary = send(quick_traffic(messages=5), lambda request: httpx.Response(503), retries=2)

    assert summary.unique_events == 0
    assert summary.messages == 0
    assert summary.given_up > 0
    assert summary.requests == 3 * summary.given_up
    assert summary.non_200 == summary.requests


def test_a_wrong_token_stops_the_run_at_once() -> None:
    summary = TrafficSummary()
    calls = 0

    def webhook(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(401, json={"status": "unauthorized"})

    with pytest.raises(WebhookRefused, match="401"):
        send(quick_traffic(messages=500), webhook, summary=summary, concurrency=2)

    assert summary.unique_events == 0
    assert calls <= 2


def test_a_stop_ends_an_endless_run_and_keeps_an_exact_summary() -> None:
    # Given endless traffic, and a stop asked for once 200 requests were acknowledged
    stop = asyncio.Event()
    received: list[bytes] = []

    def webhook(request: httpx.Request) -> httpx.Response:
        received.append(request.content)
        if len(received) == 200:
            stop.set()
        return httpx.Response(200)

    # When it runs
    summary = send(quick_traffic(messages=None), webhook, stop=stop)

    # Then it ended, and its summary is exactly what was acknowledged
    assert summary.acknowledged_requests == len(received) >= 200
    assert (summary.unique_events, summary.duplicates) == parsed(received)
    assert summary.ended_at is not None


def test_nothing_is_sent_after_silence_begins() -> None:
    # Given endless traffic that falls silent at 1 s, in a run of 1.5 s (a second leaves a
    # busy machine time to start sending at all)
    traffic = quick_traffic(messages=None, rate=500.0, time_scale=1e-3)
    posted: list[bytes] = []

    def webhook(request: httpx.Request) -> httpx.Response:
        posted.append(request.content)
        return httpx.Response(200)

    send(traffic, webhook, silence_after=1.0, duration=1.5)

    # Then every body posted was due before the silence
    due_before: set[bytes] = set()
    for request in live_traffic(traffic):
        if request.at >= 1.0:
            break
        due_before.add(request.body)
    assert posted
    assert set(posted) <= due_before


# The command line -------------------------------------------------------------------------------


def run_cli(*args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sidecar", *args],
        env=environment_without_settings(**settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_simulate_help_teaches_by_example() -> None:
    result = run_cli("simulate", "--help")

    assert result.returncode == 0
    assert "qlara-sidecar simulate --messages 1000 --rate 100" in result.stdout
    for flag in ("--duplicates", "--reorder", "--silence-after", "--error-burst", "--shapes"):
        assert flag in result.stdout


def test_simulate_without_a_url_or_a_token_exits_2_saying_how_to_fix_it(tmp_path: Path) -> None:
    result = run_cli("simulate", "--messages", "1", data_dir=str(tmp_path))

    assert result.returncode == 2
    assert "QLARA_SIDECAR_WEBHOOK_TOKEN" in result.stderr
    assert "--url" in result.stderr


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--error-burst", "soon"], "AT[:SECONDS[:SHARE]]"),
        (["--shapes", "A,Z"], "--shapes"),
        (["--channels", "fax"], "--channels"),
        (["--duplicates", "2"], "--duplicates"),
    ],
)
def test_simulate_refuses_a_bad_option_with_status_2(
    tmp_path: Path, args: list[str], named: str
) -> None:
    result = run_cli("simulate", "--url", URL, *args, data_dir=str(tmp_path))

    assert result.returncode == 2
    assert named in result.stderr


# End to end ------------------------------------------------------------------------------------


@pytest.fixture
def sidecar(tmp_path: Path) -> Iterator[Sidecar]:
    """A running `qlara-sidecar up` on free ports, stopped after the test."""
    data_dir, port = tmp_path / "data", free_port()
    running = Sidecar(
        data_dir=data_dir,
        env=sidecar_env(data_dir, port),
        port=port,
        log_path=tmp_path / "up.log",
    )
    try:
        yield running.start()
    finally:
        if running.process is not None:
            running.stop()


@pytest.mark.e2e
def test_the_sidecar_records_exactly_what_simulate_says_it_sent(
    sidecar: Sidecar, tmp_path: Path
) -> None:
    # Given a running sidecar
    summary_file = tmp_path / "x.json"
    # When 300 messages are simulated with 5% resends and 5% late events
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("qlara-sidecar")),
            "simulate",
            *("--messages", "300", "--rate", "200", "--duplicates", "0.05"),
            *("--reorder", "0.05", "--summary-file", str(summary_file)),
            *("--url", sidecar.webhook_url),
        ],
        env=sidecar.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(summary_file.read_text())
    assert json.loads(result.stdout) == summary
    assert summary["messages"] == 300
    assert summary["non_200"] == 0
    assert summary["duplicates"] > 0

    # Then the read API shows exactly its unique events and duplicates
    def caught_up() -> dict[str, int] | None:
        stats: dict[str, int] = sidecar.read("/v1/stats/webhook")
        done = (
            stats["eventsTotal"] >= summary["unique_events"]
            and stats["duplicatesTotal"] >= summary["duplicates"]
        )
        return stats if done else None

    stats = wait_for(caught_up, timeout=120, what="every simulated event to be recorded")
    assert stats["eventsTotal"] == summary["unique_events"]
    assert stats["duplicatesTotal"] == summary["duplicates"]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.mark.e2e
def test_demo_moves_the_numbers_fills_dropped_finals_and_stops_cleanly_on_sigterm(
    tmp_path: Path,
) -> None:
    # Given `qlara-sidecar demo` on a fresh data dir, its reconciler polling after 2 s
    data_dir, port = tmp_path / "data", free_port()
    env = sidecar_env(data_dir, port)
    env["QLARA_SIDECAR_RECONCILE_AFTER"] = "sms=2s,rcs=2s,whatsapp=2s,other=2s"
    env["QLARA_SIDECAR_RECONCILE_INTERVAL"] = "1"
    demo = Sidecar(
        data_dir=data_dir,
        env=env,
        port=port,
        log_path=tmp_path / "demo.log",
    )
    with demo.log_path.open("wb") as log:
        demo.process = subprocess.Popen(
            [str(Path(sys.executable).with_name("qlara-sidecar")), "demo"],
            env=demo.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        # Then the sidecar's numbers move on their own
        def events_total() -> int:
            assert demo.process is not None
            if demo.process.poll() is not None:
                raise AssertionError(f"demo exited early:\n{demo.log()}")
            return int(demo.read("/v1/stats/webhook")["eventsTotal"])

        first = wait_for(events_total, timeout=180, what="the demo's first recorded events")
        wait_for(lambda: events_total() > first, timeout=60, what="the numbers to move")
        # And it reports its sends, so every payload shape's messages are known to be sent
        assert "Reconciler:    on, polling Qlara's messages API at http://127.0.0.1:" in demo.log()
        wait_for(
            lambda: metric(demo, "qlara_sends_requests_total", outcome="accepted") > 0,
            timeout=60,
            what="a send reported to /v1/sends",
        )
        # And a final the webhook dropped is filled in from the demo's fake Qlara
        wait_for(
            lambda: demo.read("/v1/stats/webhook")["filledByPollingTotal"] > 0,
            timeout=180,
            what="a dropped final to be filled by polling",
        )
        # And its report line says so
        wait_for(
            lambda: re.search(r"filled by polling Qlara: [1-9]", demo.log()),
            timeout=60,
            what="the demo's report to show a filled final",
        )
        # And the fake has the demo's webhook on file, as the registration check reads it
        assert metric(demo, "qlara_webhook_registration_ok", reason="ok") == 1
        children = [pid for pid, _ in children_of(demo.process.pid)]
        assert children

        # When it gets SIGTERM
        demo.process.send_signal(signal.SIGTERM)

        # Then it exits 0, every child within its grace period, and leaves no process behind
        assert demo.process.wait(timeout=60) == 0
        assert "killed child after its grace period" not in demo.log()
        wait_for(
            lambda: not any(_alive(pid) for pid in children),
            timeout=30,
            what="every child of the demo to be gone",
        )
        assert "Demo traffic" in demo.log()
    finally:
        if demo.process.poll() is None:
            for pid, _ in children_of(demo.process.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            demo.process.kill()
            demo.process.wait()
