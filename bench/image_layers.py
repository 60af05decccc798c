"""What the runtime image adds to its base (``python:3.11-slim``), measured without Docker:
the Dockerfile's two install steps, run with this Python into an empty directory.

    .venv/bin/python bench/image_layers.py

1. ``pip install --no-cache-dir -r requirements-runtime.lock`` (the dependencies' layer),
   into ``--target`` (the same files ``site-packages`` would get, bytecode compiled as pip
   does by default), then what the Dockerfile deletes in the same step: every ``tests`` or
   ``test`` directory, and ``share/jupyter`` (:data:`PRUNED`);
2. the application's own packages (``pip install --no-deps .``).

Prints each layer's size, the twelve largest distributions, and whether any test or lint
tool got in. The base image itself is not measured here: it comes from a registry this
machine cannot reach. Needs PyPI (or the machine's wheel mirror).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Tools that must stay out of the runtime image.
DEV_TOOLS = ("pytest", "mypy", "hypothesis", "ruff", "schemathesis", "import_linter")


def pruned(deps: Path) -> int:
    """Delete what the Dockerfile deletes after its install (``-name tests -o -name test``
    directories, ``share/jupyter``); the bytes deleted."""
    doomed = [p for p in deps.rglob("*") if p.is_dir() and p.name in ("tests", "test")]
    doomed = [p for p in doomed if not any(parent in doomed for parent in p.parents)]
    doomed.append(deps / "share" / "jupyter")
    freed = 0
    for path in doomed:
        if path.exists():
            freed += size(path)
            shutil.rmtree(path)
    return freed


def size(path: Path) -> int:
    """Bytes of the files under ``path`` (what a layer stores, before compression)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def install(target: Path, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-cache-dir", "--target",
         str(target), "--disable-pip-version-check", *args],
        check=True,
        cwd=ROOT,
        env={**os.environ, "PIP_NO_WARN_SCRIPT_LOCATION": "1"},
    )  # fmt: skip


def mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="qlara-image-") as scratch:
        deps, app = Path(scratch, "deps"), Path(scratch, "app")
        print("installing requirements-runtime.lock ...", file=sys.stderr)
        install(deps, "-r", "requirements-runtime.lock")
        freed = pruned(deps)
        print("installing the application ...", file=sys.stderr)
        install(app, "--no-deps", ".")
        by_dist: dict[str, int] = {}
        for entry in deps.iterdir():
            if entry.name.endswith((".dist-info", ".data")) or entry.name == "bin":
                continue
            name = entry.name.removesuffix(".py").split(".")[0]
            by_dist[name] = by_dist.get(name, 0) + (
                size(entry) if entry.is_dir() else entry.stat().st_size
            )
        found_dev = sorted(t for t in DEV_TOOLS if (deps / t).exists())
        dep_size, app_size = size(deps), size(app)
    print(
        f"dependencies layer: {mib(dep_size)} ({len(by_dist)} top-level names; "
        f"{mib(freed)} of tests and notebook files deleted after the install)"
    )
    print(f"application layer:  {mib(app_size)}")
    print(f"added to the base:  {mib(dep_size + app_size)}")
    print("largest:")
    for name, n in sorted(by_dist.items(), key=lambda item: -item[1])[:12]:
        print(f"  {name:<24} {mib(n):>12}")
    print(f"test or lint tools in the image: {', '.join(found_dev) or 'none'}")
    return 1 if found_dev else 0


if __name__ == "__main__":
    sys.exit(main())
