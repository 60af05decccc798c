"""Receiver and worker processes cap glibc's malloc arenas, and worker processes run
without glibc's per-thread malloc caches, unless the operator chose."""

from __future__ import annotations

import ctypes
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from sidecar.memory import TUNABLES_ENV, without_thread_caches
from sidecar.settings import load_settings
from sidecar.worker_role import worker_spec
from tests.sidecar.support import environment_without_settings


def _python(code: str, env: dict[str, str] | None = None, timeout: float = 60) -> str:
    """What ``code`` prints, run in a fresh interpreter (with ``env``, else this one's)."""
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=timeout,
    )
    return out.stdout


@pytest.mark.parametrize(("operator_value", "expected"), [(None, "True"), ("4", "False")])
def test_malloc_arenas_are_capped_unless_the_operator_chose(
    operator_value: str | None, expected: str
) -> None:
    # In a fresh interpreter: mallopt must come before any thread allocates.
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    if operator_value is not None:
        env["MALLOC_ARENA_MAX"] = operator_value
    out = _python("from sidecar.memory import limit_malloc_arenas as f; print(f())", env)
    assert out.strip() == expected


@pytest.mark.parametrize(
    ("operator_value", "expected"),
    [
        (None, "glibc.malloc.tcache_count=0"),
        ("glibc.malloc.arena_max=4", "glibc.malloc.arena_max=4:glibc.malloc.tcache_count=0"),
        ("glibc.malloc.tcache_count=7", None),
        ("glibc.malloc.arena_max=4:glibc.malloc.tcache_count=2", None),
    ],
)
def test_thread_caches_go_off_after_the_operators_tunables_unless_they_set_them(
    operator_value: str | None, expected: str | None
) -> None:
    environ = {"PATH": "/bin"}
    if operator_value is not None:
        environ[TUNABLES_ENV] = operator_value

    env = without_thread_caches(environ)

    if expected is None:
        assert env is None
    else:
        assert env == {"PATH": "/bin", TUNABLES_ENV: expected}


#: Run in a fresh interpreter: restart as a worker does, then free 64 chunks of 1,000 bytes
#: and print the tunables and how many of the chunks went back to malloc's shared free lists
#: (a chunk a thread keeps in its own cache still counts as in use).
_PROBE = """
import ctypes, os
from sidecar.memory import restart_without_thread_caches
restart_without_thread_caches()
libc = ctypes.CDLL("libc.so.6")
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd",
        "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc.mallinfo2.restype = Info
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
chunks = [libc.malloc(1000) for _ in range(64)]
before = libc.mallinfo2().uordblks
for chunk in chunks:
    libc.free(chunk)
print(os.environ.get("GLIBC_TUNABLES"), (before - libc.mallinfo2().uordblks) // 1000)
"""


@pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc" or not hasattr(ctypes.CDLL(None), "mallinfo2"),
    reason="glibc 2.33 or later only",
)
@pytest.mark.parametrize(
    ("operator_value", "tunables", "all_freed"),
    [
        (None, "glibc.malloc.tcache_count=0", True),
        # the control: with the caches on, the thread keeps 7 of the chunks for itself
        ("glibc.malloc.tcache_count=7", "glibc.malloc.tcache_count=7", False),
    ],
)
def test_a_worker_process_restarts_itself_with_thread_caches_off(
    operator_value: str | None, tunables: str, all_freed: bool
) -> None:
    env = {k: v for k, v in os.environ.items() if k != TUNABLES_ENV}
    if operator_value is not None:
        env[TUNABLES_ENV] = operator_value
    seen, freed = _python(_PROBE, env).split()
    assert seen == tunables
    assert (int(freed) == 64) is all_freed


def test_worker_children_start_with_thread_caches_off(tmp_path: Path) -> None:
    settings = load_settings({"data_dir": str(tmp_path)})

    spec = worker_spec(settings, 1, {"PATH": "/bin"})

    assert spec.env[TUNABLES_ENV] == "glibc.malloc.tcache_count=0"


#: Run in a fresh interpreter: the `worker` command, with the restart replaced by a probe that
#: prints which heavy modules were loaded when it ran (each would be imported again after it).
_RESTART_PROBE = """
import sys
import sidecar.memory
def probe():
    print(sorted(m for m in ("dramatiq", "ledger", "litestar", "sqlalchemy") if m in sys.modules))
    raise SystemExit(0)
sidecar.memory.restart_without_thread_caches = probe
from sidecar.cli import main
main(["worker"])
"""


def test_the_worker_command_restarts_before_loading_the_ledger_or_dramatiq() -> None:
    assert _python(_RESTART_PROBE).strip() == "[]"


def test_a_worker_process_does_not_import_the_receiver() -> None:
    # Litestar and the receiver's app would add half a second to every worker's start.
    code = (
        "import sys, sidecar.wiring, sidecar.worker_role, workers; "
        "print(sorted(m for m in ('litestar', 'receiver') if m in sys.modules))"
    )
    assert _python(code).strip() == "[]"


def test_up_s_own_process_loads_neither_the_ledger_nor_the_workers() -> None:
    # `up` only supervises: SQLAlchemy, Alembic and Dramatiq took some 40 MiB there for life
    code = (
        "import sys, sidecar.cli, sidecar.up; "
        "print(sorted(m for m in ('sqlalchemy', 'alembic', 'dramatiq', 'ledger', 'workers', "
        "'litestar', 'uvicorn', 'streamlit') if m in sys.modules))"
    )
    assert _python(code).strip() == "[]"


def test_a_worker_up_started_opens_the_migrated_ledger_without_alembic(tmp_path: Path) -> None:
    from ledger import Ledger
    from sidecar.settings import Settings
    from sidecar.worker_role import worker_spec

    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    Ledger.connect(url).close()  # `up` migrates before starting its workers
    # `up`'s workers are told so
    assert "--skip-migrate" in worker_spec(Settings(), 1, {}, migrate=False).argv
    assert "--skip-migrate" not in worker_spec(Settings(), 1, {}).argv
    code = (
        "import sys; from workers import WorkerConfig, build_broker; "
        "from workers.connection import LedgerConnection; "
        f"config = WorkerConfig(redis_url='redis://127.0.0.1:6379/15', database_url={url!r}, "
        "migrate=False); broker = build_broker(config); "
        "[c] = [m for m in broker.middleware if isinstance(m, LedgerConnection)]; "
        "c.open(); print('alembic' in sys.modules)"
    )
    assert _python(code).strip() == "False"


def test_the_queue_s_names_come_without_the_workers_package() -> None:
    # The receiver and `up` read them; the rest of workers/ (Dramatiq's broker, the ledger,
    # the API client) took 21 MiB more, and comes when a name of it is asked for.
    code = (
        "import sys; from workers import ACTOR_NAME, QUEUE_NAME; "
        "print(sorted(m for m in ('workers.broker', 'ledger', 'qlara_api') if m in sys.modules)); "
        "from workers import redrive; print(callable(redrive))"
    )
    assert _python(code).split() == ["[]", "True"]


def test_the_default_ledger_url_is_the_ledger_s_own(tmp_path: Path) -> None:
    from ledger import default_sqlite_url
    from sidecar import wiring
    from sidecar.settings import Settings

    settings = Settings(data_dir=tmp_path)
    assert wiring.database_url(settings) == default_sqlite_url(tmp_path.resolve())


def test_the_command_line_and_the_receiver_do_not_load_the_numbering_plan() -> None:
    # phonenumbers' tables take 12 MiB: only the workers and the explorer look numbers up;
    # Alembic is for migrating, which a receiver does not do.
    code = (
        "import sys, sidecar.cli, sidecar.receiver_role, receiver; "
        "from sidecar.settings import load_settings; load_settings(); "
        "print(sorted(m for m in ('phonenumbers', 'alembic') if m in sys.modules))"
    )
    assert _python(code).strip() == "[]"


#: Run in a fresh interpreter: build the receiver app from the environment, as uvicorn's
#: factory call does, start it, and print how many objects the collector leaves out.
_RECEIVER_PROBE = """
import gc
from litestar.testing import TestClient
from sidecar.asgi import create_app
app = create_app()
before = gc.get_freeze_count()
with TestClient(app) as client:
    assert client.get("/healthz").status_code == 200
    print(before, gc.get_freeze_count())
"""


def test_a_receiver_process_freezes_what_its_start_up_built(
    tmp_path: Path, redis_url: str, namespace: str
) -> None:
    env = environment_without_settings(
        redis_url=redis_url,
        database_url=f"sqlite:///{tmp_path}/ledger.sqlite3",
        data_dir=str(tmp_path / "data"),
        namespace=namespace,
        webhook_token="w" * 32,
        read_token="r" * 32,
    )
    before, after = map(int, _python(_RECEIVER_PROBE, env, timeout=120).split())
    assert before == 0
    assert after > 10_000
