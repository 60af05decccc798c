"""Keeping a long-running process's memory flat."""

from __future__ import annotations

import ctypes
import gc
import os
import platform
import sys
from collections.abc import Mapping

#: glibc's mallopt parameter for the number of malloc arenas.
_M_ARENA_MAX = -8
#: Arenas a receiver or worker process allows itself (see :func:`limit_malloc_arenas`).
MALLOC_ARENAS = 2

#: The variable glibc reads its tunables from, once, when a program starts.
TUNABLES_ENV = "GLIBC_TUNABLES"
#: The tunable for how many freed chunks of each size a thread keeps for itself.
TCACHE_COUNT = "glibc.malloc.tcache_count"


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas for this process, unless the operator set
    ``MALLOC_ARENA_MAX``; return whether the cap was set.

    glibc gives threads that allocate at the same time their own arenas, up to 8 per core. A
    worker's 64 threads, or a receiver's event loop beside the threads that answer the read
    API, then spread freed memory over many arenas, and the process's RSS creeps up as they
    fragment (measured on a worker: +36% over 200,000 receipts with the default, +16% with 2
    arenas; Python's own allocations did not grow). Must run before the threads start.
    Elsewhere than glibc, nothing happens.
    """
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        return bool(libc.mallopt(_M_ARENA_MAX, arenas))
    except (OSError, AttributeError):
        return False


def without_thread_caches(environ: Mapping[str, str]) -> dict[str, str] | None:
    """``environ`` with glibc's per-thread malloc caches turned off (``GLIBC_TUNABLES``
    gains ``glibc.malloc.tcache_count=0``, after any tunables already there), or ``None``
    when it already sets that tunable: ours, or the operator's choice."""
    tunables = environ.get(TUNABLES_ENV, "")
    if any(item.split("=", 1)[0].strip() == TCACHE_COUNT for item in tunables.split(":")):
        return None
    env = dict(environ)
    env[TUNABLES_ENV] = ":".join(filter(None, [tunables, f"{TCACHE_COUNT}=0"]))
    return env


def restart_without_thread_caches() -> None:
    """Execute this process again, same pid and command line, with glibc's per-thread malloc
    caches turned off (:func:`without_thread_caches`); return at once, doing nothing, when
    they already are, when the operator set ``glibc.malloc.tcache_count``, or elsewhere than
    glibc. For a worker process, first thing, before any thread starts.

    Each thread keeps up to 7 freed chunks of every size up to 1 KiB for itself, which
    only it reuses. A worker's 64 threads all take turns at the ledger transaction and at
    freeing what another thread allocated, so over hours each fills its own cache: measured
    with 64 threads recording through one group commit, 9-10 MiB sat in those caches (freed
    when the threads ended) and RSS rose all along; with the caches off it stayed within
    1 MiB after warm-up, at the same CPU. glibc reads tunables only when a program starts,
    hence the exec rather than a call like :func:`limit_malloc_arenas`.
    """
    if platform.libc_ver()[0] != "glibc":
        return
    env = without_thread_caches(os.environ)
    if env is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)  # noqa: S606 - ourselves


def freeze_startup_objects() -> None:
    """Exempt everything the process built until now from the garbage collector's scans.

    A receiver or worker process holds 100,000-125,000 objects once started (Litestar's app
    and schema, SQLAlchemy, the imported modules), and each full collection walks them all:
    100-145 ms on a 2-core machine (timed with ``gc.callbacks``), the whole process waiting.
    What the process allocates later is still collected as before. Call once, when the
    start-up is done (``gc.freeze``).
    """
    gc.collect()
    gc.freeze()
