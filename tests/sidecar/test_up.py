"""`qlara-sidecar up` as a newcomer runs it: embedded Redis, free ports, a fresh data dir."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.e2e.sidecar_process import children_of
from tests.sidecar.support import environment_without_settings, wait_until

pytestmark = pytest.mark.e2e

PHONE = "+393901234567"
EVENT = {
    "messageId": "m1",
    "status": "SENT",
    "timestamp": "2025-04-08T14:30:00Z",
    "channel": "sms",
    "phoneNumber": PHONE,
}
#: Generous: on a loaded two-CPU machine five Python processes import the whole stack at once.
START_TIMEOUT_S = 180.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def processes_mentioning(needle: str) -> list[tuple[int, str]]:
    """Live processes whose command line or environment contains ``needle``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = (entry / "environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if state != "Z" and (needle in cmdline or needle in environ):
            found.append((int(entry.name), cmdline.strip()))
    return found


def log_events(path: Path) -> list[dict[str, object]]:
    """The JSON log lines written so far (a line being written is skipped)."""
    events = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events


class Up:
    """A running `qlara-sidecar up` with its output in two files."""

    def __init__(self, data_dir: Path, output_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.dashboard_port = free_port()
        output_dir.mkdir(parents=True, exist_ok=True)
        self.stdout = output_dir / "stdout.txt"
        self.stderr = output_dir / "stderr.txt"
        env = environment_without_settings(
            data_dir=str(self.data_dir),
            port=str(self.port),
            workers="2",
            receiver_processes="2",
            redis_port="0",
            broker_heartbeat_timeout="3",
            dashboard_port=str(self.dashboard_port),
        )
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "sidecar", "up"],
                env=env,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
            )
        self.base_url = f"http://127.0.0.1:{self.port}"

    def healthy(self) -> bool:
        if self.process.poll() is not None:
            pytest.fail(f"up exited early with {self.process.returncode}:\n{self.output()}")
        return httpx.get(f"{self.base_url}/healthz", timeout=2).status_code == 200

    def tokens(self) -> dict[str, str]:
        stored: dict[str, str] = json.loads((self.data_dir / "tokens.json").read_text())
        return stored

    def output(self) -> str:
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM, then the exit status. `up` promises 10 s; the wait is longer because a
        busy machine may take longer to tear processes down. Whether each stage kept its
        grace period is what `up` logs, and :meth:`killed_any` reads."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)

    def killed_any(self) -> bool:
        """Whether `up` had to kill a child that outlived its grace period."""
        return "killed child after its grace period" in self.output()

    def embedded_redis_url(self) -> str:
        """The URL `up` recorded for its embedded Redis (what `redrive` borrows)."""
        return (self.data_dir / "redis" / "url").read_text().strip()

    def child_pid(self, name: str) -> int:
        started = [
            e
            for e in log_events(self.stderr)
            if e.get("event") == "started child" and e.get("child") == name
        ]
        return int(str(started[-1]["pid"]))


@pytest.fixture
def make_up(tmp_path: Path) -> Iterator[Callable[[str], Up]]:
    """Start `up` runs on the test's data dir; whatever is left of them is killed afterwards."""
    data_dir = tmp_path / "data"
    started: list[Up] = []

    def make(run: str) -> Up:
        started.append(Up(data_dir, tmp_path / run))
        return started[-1]

    yield make
    for sidecar in started:
        if sidecar.process.poll() is None:
            sidecar.process.kill()
            sidecar.process.wait()
    for pid, _ in processes_mentioning(str(data_dir)):
        os.kill(pid, signal.SIGKILL)


def test_up_records_an_event_restarts_a_killed_worker_and_stops_cleanly(
    make_up: Callable[[str], Up],
) -> None:
    # Given `up` started with nothing configured but a data dir and a port
    up = make_up("run")
    wait_until(up.healthy, "/healthz to answer", timeout=START_TIMEOUT_S)
    tokens = up.tokens()

    # When Qlara posts a delivery-status event to the webhook
    response = httpx.post(f"{up.base_url}/webhook/{tokens['webhook']}", json=EVENT, timeout=10)
    assert response.status_code == 200

    # Then the read API shows the message within a deadline
    def read_message() -> httpx.Response | None:
        answer = httpx.get(
            f"{up.base_url}/v1/messages/m1",
            headers={"Authorization": f"Bearer {tokens['read']}"},
            timeout=5,
        )
        return answer if answer.status_code == 200 else None

    message = wait_until(read_message, "message m1 in the ledger", timeout=60)
    assert "m1" in message.text
    assert "SENT" in message.text

    # And its embedded Redis wants the password kept in tokens.json, which no command line
    # and no output shows
    embedded = up.embedded_redis_url()
    port = embedded.rsplit(":", 1)[1].split("/")[0]
    bare = redis.Redis(host="127.0.0.1", port=int(port), socket_timeout=5)
    with pytest.raises(redis.AuthenticationError):
        bare.ping()
    bare.close()
    assert redis.Redis.from_url(embedded, socket_timeout=5).ping()
    assert f":{tokens['redis']}@" in embedded
    assert not [cmd for _, cmd in children_of(up.process.pid) if tokens["redis"] in cmd]

    # And the explorer `up` started answers on its own port
    explorer = f"http://127.0.0.1:{up.dashboard_port}"
    wait_until(
        lambda: httpx.get(f"{explorer}/_stcore/health", timeout=2).status_code == 200,
        "the explorer to answer",
        timeout=START_TIMEOUT_S,
    )

    # When a worker is SIGKILLed, then the supervisor restarts it and says so
    os.kill(up.child_pid("worker-1"), signal.SIGKILL)
    wait_until(
        lambda: "restarted worker-1 after exit code -9" in up.stderr.read_text(),
        "the restart of worker-1 to be logged",
        timeout=60,
    )

    # When `up` gets SIGTERM, then it exits 0, every child within its grace period, and
    # leaves no process behind
    assert up.stop() == 0
    assert not up.killed_any()
    wait_until(
        lambda: processes_mentioning(str(up.data_dir)) == [],
        "every process of `up` to be gone",
        timeout=30,
    )

    # And no phone number is in the output, and each token only in its one-time print
    output = up.output()
    assert "You can now view your Streamlit app" not in output  # up's banner says where
    assert PHONE not in output
    assert PHONE.removeprefix("+") not in output
    for name in ("webhook", "read"):
        lines = [line for line in output.splitlines() if tokens[name] in line]
        assert len(lines) == 1, f"the {name} token appears in {len(lines)} lines"
        assert lines[0] in up.stdout.read_text()
    assert tokens["redis"] not in output


def test_a_second_start_reuses_the_tokens_and_prints_none(
    make_up: Callable[[str], Up],
) -> None:
    # Given a data dir where a first `up` generated its tokens
    first = make_up("first")
    wait_until(first.healthy, "the first start", timeout=START_TIMEOUT_S)
    tokens = first.tokens()
    assert first.stop() == 0

    # When `up` starts again on the same data dir
    second = make_up("second")
    wait_until(second.healthy, "the second start", timeout=START_TIMEOUT_S)
    assert second.stop() == 0

    # Then the same tokens are in force and none is printed
    assert second.tokens() == tokens
    output = second.output()
    assert all(token not in output for token in tokens.values())
    assert "tokens.json" in second.stdout.read_text()
