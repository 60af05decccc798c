"""The ASGI factory uvicorn calls in every receiver process: ``sidecar.asgi:create_app``.

uvicorn starts each receiver process as a fresh interpreter, so the factory rebuilds
everything from what a process inherits: the ``QLARA_SIDECAR_*`` environment (the parent
exports its effective settings there, see :meth:`Settings.to_env`) and the tokens in
``DATA_DIR/tokens.json``. ``REDIS_URL`` and ``DATABASE_URL`` must be set.

Run by hand (after ``qlara-sidecar migrate``)::

    QLARA_SIDECAR_REDIS_URL=redis://127.0.0.1:6379/0 \\
    QLARA_SIDECAR_DATABASE_URL=sqlite:///qlara-data/ledger.sqlite3 \\
    uvicorn --factory sidecar.asgi:create_app --no-access-log --no-proxy-headers \\
        --loop uvloop --http sidecar.http_protocol:HttpToolsProtocol

(the last two as ``qlara-sidecar receiver`` runs it; see :mod:`sidecar.http_protocol`).
"""

from __future__ import annotations

from litestar import Litestar

import receiver
from sidecar import wiring
from sidecar.logging import configure
from sidecar.memory import freeze_startup_objects, limit_malloc_arenas
from sidecar.settings import load_settings, require
from sidecar.tokens import resolve_tokens, secrets_of


def create_app() -> Litestar:
    """Build the receiver app from the environment; raises ``SettingsError`` on a bad value."""
    limit_malloc_arenas()  # before the threads that answer the read API start
    settings = load_settings()
    tokens = resolve_tokens(settings, generate=False)
    configure(settings.log_level, settings.log_format, secrets_of(settings, tokens))
    config = wiring.receiver_config(
        settings,
        tokens,
        redis=require(settings, "redis_url"),
        database=require(settings, "database_url"),
    )
    app = receiver.create_app(config)
    # Last of the start-up hooks: what they built is frozen too.
    app.on_startup.append(freeze_startup_objects)
    return app
