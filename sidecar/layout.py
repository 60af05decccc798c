"""Where things live under ``DATA_DIR``.

```
DATA_DIR/
  tokens.json        generated tokens, mode 0600 (sidecar.tokens)
  ledger.sqlite3     the default ledger (ledger.default_sqlite_url)
  spool/, rejects/   the receiver's spool and reject log
  redis/             the embedded Redis: append-only file, server.log, and `url` while `up` runs
  metrics/           each process's metric values (`up`; a role's own in metrics/<role>/)
```
"""

from __future__ import annotations

from pathlib import Path

from sidecar.settings import Settings

EMBEDDED_URL_FILE = Path("redis") / "url"
"""Under DATA_DIR: the URL of the Redis a running `up` started (for `redrive`)."""


METRICS_DIR = Path("metrics")
"""Under DATA_DIR: where `up`'s processes keep their metric values (multiprocess mode)."""

SPOOL_DIR = Path("spool")
"""Under DATA_DIR: the receiver's spool (``receiver.ReceiverConfig.spool_dir``)."""

WORKER_METRICS = "worker"
"""Under METRICS_DIR: the worker role's own directory, which `qlara-sidecar metrics` serves."""


def data_dir(settings: Settings) -> Path:
    """The absolute data directory, created if missing."""
    path = settings.data_dir.expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path
