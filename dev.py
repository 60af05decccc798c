#!/usr/bin/env python3
"""Set up and run qlara-sidecar from a checkout, with nothing but Python 3.11.

    python3 dev.py up      # create .venv from the lock file if needed, then `qlara-sidecar up`
    python3 dev.py test    # the same set-up, then the whole test suite (pytest)
    python3 dev.py setup   # only the set-up
    python3 dev.py lock    # re-resolve requirements.lock and requirements-runtime.lock from
                           # pyproject.toml (needs the network)
    python3 dev.py COMMAND # any other qlara-sidecar command, e.g. `simulate --rate 20`

Any further arguments go to the command: `python3 dev.py test -k ledger -x`.
The command itself is .venv/bin/qlara-sidecar (`.venv/bin/qlara-sidecar --help`).
The virtual environment is rebuilt only when pyproject.toml or requirements.lock change.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
LOCK = ROOT / "requirements.lock"
#: The runtime dependencies alone, at the versions of LOCK: what the image installs.
RUNTIME_LOCK = ROOT / "requirements-runtime.lock"
STAMP = VENV / ".qlara-sidecar-installed"


def _digest() -> str:
    h = hashlib.sha256()
    for path in (ROOT / "pyproject.toml", LOCK):
        h.update(path.read_bytes())
    # The editable install maps the packages that exist when it runs: a new one needs a rerun.
    for package in sorted(p.parent.name for p in ROOT.glob("*/__init__.py")):
        h.update(package.encode())
    return h.hexdigest()


def _run(*cmd: str | Path) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True)  # noqa: S603 - our own fixed commands


def setup() -> None:
    """Create .venv and install the locked dependencies and the project (editable)."""
    if sys.version_info < (3, 11):  # noqa: UP036 - this script may be started by an older python3
        sys.exit(f"qlara-sidecar needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if STAMP.exists() and STAMP.read_text() == _digest():
        return
    if not (BIN / "python").exists():
        print(f"[1/3] creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    py = BIN / "python"
    packages = sum(1 for line in LOCK.read_text().splitlines() if "==" in line)
    print(
        f"[2/3] installing {packages} locked packages into {VENV} "
        "(a few minutes on a fresh machine; each is named as it comes)",
        flush=True,
    )
    _run(py, "-m", "pip", "install", "--progress-bar", "off", "--disable-pip-version-check",
         "-r", LOCK)  # fmt: skip
    print("[3/3] installing qlara-sidecar itself (editable)", flush=True)
    _run(
        py,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-deps",
        "-e",
        ROOT,
    )
    STAMP.write_text(_digest())
    print(f"set up: the command is {BIN / 'qlara-sidecar'} (or python3 dev.py COMMAND)", flush=True)


def lock() -> None:
    """Resolve pyproject.toml (with the dev extra) into requirements.lock, then its runtime
    dependencies alone, at the same versions, into requirements-runtime.lock (what the
    image installs)."""
    setup_tool = [str(BIN / "python"), "-m", "pip", "install", "--quiet", "uv"]
    subprocess.run(setup_tool, check=True)  # noqa: S603
    compile_lock = (BIN / "uv", "pip", "compile", "--quiet", "--universal")
    common = ("--python-version", "3.11", "--no-header", ROOT / "pyproject.toml")
    _run(*compile_lock, "--extra", "dev", "-o", LOCK, *common)
    _run(*compile_lock, "--constraint", LOCK, "-o", RUNTIME_LOCK, *common)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(__doc__)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "lock":
        lock()
        return 0
    setup()
    if command == "setup":
        return 0
    if command == "up":
        os.execv(BIN / "qlara-sidecar", [str(BIN / "qlara-sidecar"), "up", *rest])  # noqa: S606
    if command == "test":
        os.chdir(ROOT)
        os.execv(BIN / "python", [str(BIN / "python"), "-m", "pytest", *rest])  # noqa: S606
    # Any other command is qlara-sidecar's, which answers an unknown one with its --help.
    os.execv(BIN / "qlara-sidecar", [str(BIN / "qlara-sidecar"), command, *rest])  # noqa: S606


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
