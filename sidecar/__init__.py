"""The composition root: settings, the ``qlara-sidecar`` CLI, the `up` supervisor.

Nothing imports this package; it imports the others. Its parts:

- :mod:`sidecar.settings`: the one typed configuration object (``QLARA_SIDECAR_*``, flags);
- :mod:`sidecar.tokens`: webhook and read tokens, generated once and kept in ``tokens.json``;
- :mod:`sidecar.logging`: one ``configure()`` for structlog and stdlib logging, with the
  phone-number and secret redaction safety net;
- :mod:`sidecar.wiring`: settings to :class:`receiver.ReceiverConfig`,
  :class:`receiver.MetricsConfig` and :class:`workers.WorkerConfig`;
- :mod:`sidecar.layout`: where things live under ``DATA_DIR``;
- :mod:`sidecar.embedded_redis`, :mod:`sidecar.supervisor`, :mod:`sidecar.children`,
  :mod:`sidecar.receiver_role`, :mod:`sidecar.worker_role`, :mod:`sidecar.metrics_role`,
  :mod:`sidecar.up`: the processes and their supervision;
- :mod:`sidecar.asgi`: the uvicorn factory; :mod:`sidecar.cli`: the command line.
"""

from sidecar.settings import Settings, SettingsError, load_settings

__all__ = ["Settings", "SettingsError", "load_settings"]
