"""Fixtures for real services.

A test that needs Redis or PostgreSQL gets it from here. When the service is unreachable the
test is skipped with the reason, except in CI (``CI`` set), where a missing service is a
failure: CI starts them, so their absence means a broken set-up, not an optional test.

Services are found through ``QLARA_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``)
and ``QLARA_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``).
Each test gets its own Redis key namespace and its own PostgreSQL database, so tests never
see each other's data and nothing is flushed.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

#: The fake Qlara (its ``serve_fake`` fixture), for every test directory.
pytest_plugins = ["tests.fake_qlara"]

REDIS_URL = os.environ.get("QLARA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get(
    "QLARA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
IN_CI = bool(os.environ.get("CI"))


def missing_service(reason: str) -> None:
    """Fail in CI, skip elsewhere: the one policy for an absent service."""
    if IN_CI:
        pytest.fail(f"{reason} (CI must provide it)", pytrace=False)
    pytest.skip(reason)


def on_path(*names: str, package: str) -> str:
    """The path of the first of ``names`` on PATH; when none is, :func:`missing_service`
    naming the Debian ``package`` that brings it."""
    for name in names:
        path = shutil.which(name)
        if path is not None:
            return path
    missing_service(f"{names[0]} is not on PATH (apt-get install {package})")
    raise AssertionError("unreachable")  # missing_service skips or fails


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of a reachable Redis (the machine's, on loopback)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        missing_service(f"Redis not reachable at {REDIS_URL}: {exc}")
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def namespace(redis_url: str) -> Iterator[str]:
    """A Redis key namespace private to one test; its keys are deleted afterwards."""
    import redis

    ns = f"qlara-test-{uuid.uuid4().hex[:12]}"
    yield ns
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{ns}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """URL of a reachable PostgreSQL server's maintenance database."""
    import psycopg

    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=2):
            pass
    except psycopg.Error as exc:
        missing_service(f"PostgreSQL not reachable at {POSTGRES_URL}: {exc}")
    return POSTGRES_URL


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """SQLAlchemy URL of a fresh PostgreSQL database, dropped after the test."""
    import psycopg

    name = f"qlara_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = postgres_admin_url.rsplit("/", 1)[0]
    yield f"{base.replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}"
    with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """SQLAlchemy URL of a fresh SQLite ledger file."""
    return f"sqlite:///{tmp_path / 'ledger.sqlite3'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each ledger contract test runs once per backend."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("postgres_url"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OwnRedis:
    """A redis-server of the test's own (AOF on), which the test may kill and restart."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        import redis

        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--appendonly",
                "yes",
                # Written and fsync'd before each reply: "everysec" may hold an acknowledged
                # write back for up to 2 s, and SIGKILL would then lose it.
                "--appendfsync",
                "always",
                "--save",
                "",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_timeout=0.5, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 15
        try:
            while True:
                try:
                    if client.ping():
                        return
                except redis.RedisError:
                    if time.monotonic() > deadline:
                        raise
                time.sleep(0.05)
        finally:
            client.close()

    def pause(self) -> None:
        """SIGSTOP: the server keeps its connections but answers nothing until resumed."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def kill(self) -> None:
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGCONT)
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()
            self.process = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    """A private redis-server with AOF, for tests that kill and restart the broker."""
    import shutil

    if shutil.which("redis-server") is None:
        missing_service("redis-server is not on PATH")
    server = OwnRedis(tmp_path / "redis")
    server.directory.mkdir()
    server.start()
    yield server
    server.kill()


@pytest.fixture
def make_sidecar(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Build (not start) ``qlara-sidecar up`` processes; each one started is stopped after
    the test."""
    from tests.e2e.sidecar_process import Sidecar, free_port, sidecar_env

    made: list[Sidecar] = []

    def make(**settings: str) -> Sidecar:
        data_dir = tmp_path / f"data{len(made)}"
        port = free_port()
        sidecar = Sidecar(
            data_dir=data_dir,
            env=sidecar_env(data_dir, port, **settings),
            port=port,
            log_path=tmp_path / f"sidecar{len(made)}.log",
        )
        made.append(sidecar)
        return sidecar

    yield make
    for sidecar in made:
        if sidecar.process is not None:
            try:
                sidecar.stop()
            except Exception as exc:
                print(f"stopping {sidecar.port} failed: {exc}")
