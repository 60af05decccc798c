"""Where things live under ``DATA_DIR``.

```
DATA_DIR/            mode 0700; every file in it 0600 (see data_dir)
  tokens.json        generated tokens, mode 0600 (sidecar.tokens)
  ledger.sqlite3     the default ledger (ledger.default_sqlite_url)
  spool/, rejects/   the receiver's spool and reject log
  redis/             the embedded Redis: append-only file, server.log, and `url` while `up` runs
  metrics/           each process's metric values (`up`; a role's own in metrics/<role>/)
```
"""

from __future__ import annotations

import os
from pathlib import Path

import structlog

from sidecar.settings import Settings

log = structlog.get_logger(__name__)

#: Under DATA_DIR: the SQLite ledger when no DATABASE_URL is set (ledger.default_sqlite_url's).
LEDGER_FILE = Path("ledger.sqlite3")
EMBEDDED_URL_FILE = Path("redis") / "url"
"""Under DATA_DIR: the URL of the Redis a running `up` started (for `redrive`)."""


METRICS_DIR = Path("metrics")
"""Under DATA_DIR: where `up`'s processes keep their metric values (multiprocess mode)."""

SPOOL_DIR = Path("spool")
"""Under DATA_DIR: the receiver's spool (``receiver.ReceiverConfig.spool_dir``)."""

WORKER_METRICS = "worker"
"""Under METRICS_DIR: the worker role's own directory, which `qlara-sidecar metrics` serves."""


def data_dir(settings: Settings) -> Path:
    """The absolute data directory, created if missing, and private to this user.

    It holds phone numbers and payloads (ledger, spool, reject log, Redis's append-only
    file), so it is kept at mode 0700 (tightened when this user owns it and it was open to
    others), and this process's file mode mask becomes 077: what the process and the
    children it starts create from now on is theirs alone.
    """
    path = settings.data_dir.expanduser().resolve()
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.umask(0o077)
    mode = path.stat()
    if mode.st_mode & 0o077 and mode.st_uid == os.geteuid():
        path.chmod(0o700)
        log.info("data directory made private", path=str(path), mode="0700")
    return path
