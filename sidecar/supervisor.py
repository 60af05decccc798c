"""Run child processes, restart the ones that die, stop them all in order.

A :class:`Supervisor` owns children grouped in *stages*. Children are started in the order
they are added; on shutdown stage 0 is stopped first (for `up`: the receiver, so nothing new
is accepted), then stage 1 (the workers, which drain their in-flight events), and so on (the
embedded Redis last). Each stage gets ``SIGTERM`` and its own grace period, bounded by one
overall deadline; whatever is still alive then is killed, its whole process group with it.

Every child runs in its own session, so a Ctrl-C on the terminal reaches the supervisor
only and the stopping order stays the supervisor's decision. On Linux a child also receives
``SIGTERM`` if the supervisor itself dies, so no child outlives it unnoticed.

A child that exits while the supervisor is running is restarted after a backoff that
doubles with each quick failure (from ``min_backoff`` to ``max_backoff`` seconds) and resets
once the child has run for ``stable_after`` seconds; the restart is logged as
``restarted <child> after exit code N``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import structlog

log = structlog.get_logger(__name__)

_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ChildSpec:
    """What to run: a name for the logs, the command line, its environment, its grace period.

    ``stop_timeout`` is how many seconds the child may take to exit after ``SIGTERM``
    (bounded by the supervisor's overall shutdown deadline).
    """

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    stop_timeout: float = 5.0


@dataclass
class Child:
    """A running (or waiting to be restarted) child and its restart bookkeeping."""

    spec: ChildSpec
    stage: int
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    quick_failures: int = 0
    restart_at: float | None = None
    last_exit: int | None = None
    restarts: int = field(default=0)

    @property
    def pid(self) -> int | None:
        """The running process's id, ``None`` between a crash and its restart."""
        return self.process.pid if self.process is not None else None

    def alive(self) -> bool:
        """Whether the process is running."""
        return self.process is not None and self.process.poll() is None


class Supervisor:
    """Starts, watches, restarts and stops :class:`ChildSpec` processes (see module doc)."""

    def __init__(
        self,
        *,
        min_backoff: float = 0.5,
        max_backoff: float = 10.0,
        stable_after: float = 30.0,
        on_exit: Callable[[int], None] | None = None,
    ) -> None:
        """``on_exit`` is called with the pid of every child seen to exit (it must not
        raise): the place to clean up after a process, e.g. its metric files."""
        self.children: list[Child] = []
        self._on_exit = on_exit
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._stable_after = stable_after
        self._stopping = False

    def add(self, spec: ChildSpec, *, stage: int) -> Child:
        """Register and start a child; ``stage`` orders shutdown (lower stops first)."""
        child = Child(spec=spec, stage=stage)
        self.children.append(child)
        self._spawn(child)
        return child

    def _spawn(self, child: Child) -> None:
        child.process = subprocess.Popen(  # noqa: S603 - our own interpreter and binaries
            list(child.spec.argv),
            env=dict(child.spec.env),
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        child.started_at = time.monotonic()
        child.restart_at = None
        log.info("started child", child=child.spec.name, pid=child.process.pid)

    def poll(self) -> None:
        """Notice exited children and restart those whose backoff has passed."""
        if self._stopping:
            return
        now = time.monotonic()
        for child in self.children:
            process = child.process
            if process is not None and child.restart_at is None:
                code = process.poll()
                if code is None:
                    continue
                _kill_group(process.pid)
                self._exited(process.pid)
                child.last_exit = code
                ran_for = now - child.started_at
                if ran_for >= self._stable_after:
                    child.quick_failures = 0
                delay = min(self._max_backoff, self._min_backoff * 2**child.quick_failures)
                child.quick_failures += 1
                child.restart_at = now + delay
                log.warning(
                    "child exited",
                    child=child.spec.name,
                    pid=process.pid,
                    exit_code=code,
                    restart_in_s=round(delay, 2),
                )
            elif child.restart_at is not None and now >= child.restart_at:
                self._spawn(child)
                child.restarts += 1
                log.warning(
                    f"restarted {child.spec.name} after exit code {child.last_exit}",
                    child=child.spec.name,
                    pid=child.pid,
                    exit_code=child.last_exit,
                    restarts=child.restarts,
                )

    def run(self, stop: threading.Event, *, tick: Callable[[], None] | None = None) -> None:
        """Supervise until ``stop`` is set, calling ``tick`` (if any) every loop."""
        while not stop.wait(0.1):
            self.poll()
            if tick is not None:
                tick()

    def shutdown(self, *, deadline_s: float = 9.5, reserve_per_stage_s: float = 0.75) -> None:
        """Stop every child, stage by stage, all within ``deadline_s`` seconds.

        Each later stage keeps ``reserve_per_stage_s`` of the budget for itself, so a slow
        stage cannot leave the last one (Redis) no time to write its file.
        """
        self._stopping = True
        deadline = time.monotonic() + deadline_s
        stages = sorted({child.stage for child in self.children})
        for index, stage in enumerate(stages):
            members = [c for c in self.children if c.stage == stage]
            reserve = reserve_per_stage_s * (len(stages) - index - 1)
            grace = max(c.spec.stop_timeout for c in members)
            until = min(time.monotonic() + grace, deadline - reserve)
            self._stop_stage(members, until)

    def kill_all(self) -> None:
        """Kill every child's process group at once (a second Ctrl-C)."""
        self._stopping = True
        for child in self.children:
            if child.process is not None:
                _kill_group(child.process.pid)

    def _stop_stage(self, members: list[Child], until: float) -> None:
        running = [c for c in members if c.alive()]
        for child in running:
            assert child.process is not None
            log.info("stopping child", child=child.spec.name, pid=child.process.pid)
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(signal.SIGTERM)
        while any(c.alive() for c in running) and time.monotonic() < until:
            time.sleep(0.05)
        for child in members:
            process = child.process
            if process is None:
                continue
            if process.poll() is None:
                log.warning("killed child after its grace period", child=child.spec.name)
            # The whole group: a child's own children (uvicorn's workers) go with it.
            _kill_group(process.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=1.0)
            self._exited(process.pid)
            log.info("child stopped", child=child.spec.name, exit_code=process.returncode)

    def _exited(self, pid: int) -> None:
        if self._on_exit is not None:
            self._on_exit(pid)


def _kill_group(pgid: int) -> None:
    # Each child leads its own session, so its pid is its process group id.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


# Loaded in the parent: between fork and exec only async-signal-safe work may run.
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux for SIGTERM when the parent dies."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def stop_on_signals(supervisor: Supervisor) -> threading.Event:
    """Install SIGTERM/SIGINT handlers and return the event they set; call from the main thread.

    The first signal asks for an orderly stop. A second SIGINT (an impatient Ctrl-C) kills
    every child at once; a repeated SIGTERM is ignored, because service managers and
    ``timeout`` send it to the process and to its group, and that is not impatience.
    """
    stop = threading.Event()

    def handle(signum: int, frame: object) -> None:
        # Set before anything else: a second signal may run this handler inside the first.
        already = stop.is_set()
        stop.set()
        if not already:
            log.info("stop requested", signal=signal.Signals(signum).name)
        elif signum == signal.SIGINT:
            log.warning("second Ctrl-C: killing every child now")
            supervisor.kill_all()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stop
