"""The Grafana dashboard of the sidecar, built in Python and committed as JSON.

:func:`dashboard` returns the dashboard (Grafana's JSON model) that
``metrics/grafana/dashboards/qlara-sidecar.json`` holds; ``python -m metrics.grafana``
writes that file again after a change here (``--check`` only says whether it differs).
Beside the code, ``provisioning/`` holds what compose mounts into Grafana: the Prometheus
datasource and a file provider for ``dashboards/``.
"""

from metrics.grafana.dashboard import DASHBOARD_FILE, UID, dashboard, render

__all__ = ["DASHBOARD_FILE", "UID", "dashboard", "render"]
