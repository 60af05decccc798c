"""Alerting on the sidecar's metrics: Prometheus rules rendered from one set of thresholds.

:class:`Thresholds` holds every threshold, window and link; :func:`render` turns it into the
rule files shipped in ``alerts/rules/`` (``qlara-sidecar alerts render``). Beside the code,
this directory holds what Prometheus and Alertmanager read: the rendered rules, their
promtool unit tests (``alerts/tests/``), an example Alertmanager configuration
(``alerts/alertmanager/``) and a runbook per alert (``alerts/runbooks/``). Imports nothing of
the sidecar but the metric definitions' closed label sets and the duration spelling
(:mod:`qlara.durations`).
"""

from alerts.links import PAGES, dashboard_url, runbook_url
from alerts.render import render, stale, thresholds_yaml, write
from alerts.rules import groups
from alerts.thresholds import (
    Thresholds,
    ThresholdsError,
    load_thresholds,
    markdown_table,
    thresholds_from,
)

__all__ = [
    "PAGES",
    "Thresholds",
    "ThresholdsError",
    "dashboard_url",
    "groups",
    "load_thresholds",
    "markdown_table",
    "render",
    "runbook_url",
    "stale",
    "thresholds_from",
    "thresholds_yaml",
    "write",
]
