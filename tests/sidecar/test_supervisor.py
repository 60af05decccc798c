"""The supervisor: a dead child comes back, and children stop stage by stage."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from sidecar.supervisor import ChildSpec, Supervisor
from tests.sidecar.support import wait_until


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def on_sigterm_append(path: Path, word: str) -> list[str]:
    """A child that, asked to stop, appends ``word`` to ``path`` and exits."""
    return python(
        "import signal, sys, time\n"
        "def stop(*_):\n"
        f"    open({str(path)!r}, 'a').write({word!r} + '\\n')\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        f"open({str(path)!r} + '.{word}.ready', 'w').close()\n"
        "while True: time.sleep(0.05)\n"
    )


@pytest.fixture(autouse=True)
def plain_structlog() -> None:
    structlog.reset_defaults()


def test_a_child_that_exits_is_restarted_and_the_restart_is_logged() -> None:
    # Given a child that exits with status 3 at once
    supervisor = Supervisor(min_backoff=0.05, max_backoff=0.1)
    with capture_logs() as logs:
        child = supervisor.add(
            ChildSpec("flaky", python("import sys; sys.exit(3)"), env={}), stage=0
        )
        try:
            # When the supervisor watches it
            wait_until(
                lambda: (supervisor.poll(), child.restarts >= 2)[1], "two restarts of the child"
            )
        finally:
            supervisor.shutdown(deadline_s=2)

    # Then each restart is logged with the exit code
    events = [entry["event"] for entry in logs]
    assert "restarted flaky after exit code 3" in events


def test_shutdown_stops_the_earlier_stage_before_the_later_one(tmp_path: Path) -> None:
    # Given a "receiver" in stage 0 and a "redis" in stage 1, both running
    order = tmp_path / "order"
    supervisor = Supervisor()
    supervisor.add(ChildSpec("redis", on_sigterm_append(order, "redis"), env={}), stage=1)
    supervisor.add(ChildSpec("receiver", on_sigterm_append(order, "receiver"), env={}), stage=0)
    wait_until(
        lambda: all(Path(f"{order}.{w}.ready").exists() for w in ("redis", "receiver")),
        "both children to install their handlers",
    )

    # When the supervisor shuts down
    supervisor.shutdown(deadline_s=5)

    # Then stage 0 stopped first and nothing is left running
    assert order.read_text().split() == ["receiver", "redis"]
    assert not any(child.alive() for child in supervisor.children)


def test_a_child_that_ignores_sigterm_is_killed_after_its_grace_period(tmp_path: Path) -> None:
    stubborn = python(
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"open({str(tmp_path / 'ready')!r}, 'w').close()\n"
        "while True: time.sleep(0.05)\n"
    )
    supervisor = Supervisor()
    child = supervisor.add(ChildSpec("stubborn", stubborn, env={}, stop_timeout=0.2), stage=0)
    wait_until((tmp_path / "ready").exists, "the child to ignore SIGTERM")

    supervisor.shutdown(deadline_s=3)

    assert not child.alive()
    assert child.process is not None
    assert child.process.returncode == -9
