"""How `up` and `worker --processes N` start ``qlara-sidecar`` children.

A child runs this very installation (``python -m sidecar <role>``) and gets every effective
setting through its environment, flags included, so it resolves exactly what its parent did.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from sidecar.layout import data_dir
from sidecar.logging import resolve_format
from sidecar.settings import Settings, env_name

#: Which worker process of its launcher a worker child is (1, 2, ...), set in its
#: environment by the launcher: the ledger-kept counters' writer (``WorkerConfig.writer``).
#: Not a setting: a worker started by hand is writer 0.
WORKER_SLOT_ENV = "QLARA_WORKER_SLOT"


def child_argv(*args: str) -> list[str]:
    """The command line of a ``qlara-sidecar`` child running this very installation."""
    return [sys.executable, "-m", "sidecar", *args]


def child_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a child: ours, plus every effective setting and ``extra`` ones.

    The log format is resolved here, so a child whose stderr is ours writes the same format.
    """
    env = dict(os.environ)
    env.update(settings.to_env())
    env[env_name("data_dir")] = str(data_dir(settings))
    env[env_name("log_format")] = resolve_format(settings.log_format)
    for field, value in extra.items():
        env[env_name(field)] = value
    return env


#: How every HTTP server of the sidecar runs under uvicorn: uvloop, and httptools with each
#: response sent in one write (:mod:`sidecar.http_protocol`); no access log (a webhook path
#: carries its token); uvicorn's proxy-header rewriting off (the receiver decides itself
#: which proxies to believe); logging left to the sidecar's own configuration; no Server
#: header.
SERVER_OPTIONS: dict[str, Any] = {
    "loop": "uvloop",
    "http": "sidecar.http_protocol:HttpToolsProtocol",
    "access_log": False,
    "log_config": None,
    "proxy_headers": False,
    "server_header": False,
}
