"""The qlara-sidecar dashboard as Grafana's JSON model (schema 39), for SREs.

Three rows: is the webhook healthy (last event per channel, events/s, refused requests,
ack time, spool, queue and pending messages), are messages delivered (delivered and failed
shares from the recording rules in ``alerts/rules/``, error-budget burn, error classes,
sent -> delivered latency, how late Qlara reports), and what fires (``ALERTS``) on which
build. Every query reads the metrics the README's metrics table names, or series those
recording rules write.

Variables: ``datasource`` (any Prometheus), ``channel`` (``label_values(qlara_events_total,
channel)``, several or All, as a regex), ``window`` (the window of the explorer views the
links open), and two hidden ones: ``explorer`` (the explorer's base URL, a textbox defaulting
to :data:`EXPLORER_URL`) and ``slo`` (the delivery SLO the burn rate is measured against).

Links into the explorer follow its URL contract (``alerts.links``):
``{explorer}/{page}?channel={channel}&window={window}``, ``channel`` left out for every
channel. A series with a ``channel`` label links to its own channel's view.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from metrics.definitions import REQUEST_OUTCOMES

Json = dict[str, Any]

#: Where the committed dashboard lives (``python -m metrics.grafana`` writes it).
DASHBOARD_FILE = Path(__file__).parent / "dashboards" / "qlara-sidecar.json"
#: The dashboard's fixed uid: links and bookmarks to it survive a re-import.
UID = "qlara-sidecar"
TITLE = "qlara-sidecar"
SCHEMA_VERSION = 39
#: The explorer's base URL by default (``QLARA_SIDECAR_DASHBOARD_PORT`` on loopback); the
#: same default as the alerts' ``explorer_url`` threshold.
EXPLORER_URL = "http://127.0.0.1:8501"
#: The delivery SLO by default: the share of final outcomes that are delivered (the alerts'
#: ``slo`` threshold).
SLO = 0.95
#: The windows an explorer link may open, and the one selected at first.
EXPLORER_WINDOWS = ("5m", "15m", "1h", "6h", "1d", "7d")
EXPLORER_WINDOW = "1h"

#: Every panel and query reads the Prometheus the ``datasource`` variable names.
DATASOURCE: Json = {"type": "prometheus", "uid": "${datasource}"}
#: The ``channel`` variable as a label matcher (All is ``.*``, several are ``(a|b)``).
CHANNEL = 'channel=~"$channel"'

#: Request outcomes other than taken (queued or spooled): the caller's fault, or our 503.
_REFUSED = "|".join(o for o in REQUEST_OUTCOMES if o not in {"accepted", "spooled"})
#: The explorer pages a dashboard link opens; ``message_detail`` needs a message id.
_LINKED_PAGES = ("overview", "messages", "webhook_health", "failures", "stuck_messages")


def outcomes_rate(window: str) -> str:
    """The recorded rate of final outcomes per channel over ``window`` (written by the
    recording rules in ``alerts/rules/recording.yml``)."""
    return f"channel:qlara_delivery_outcomes:rate{window}"


def failure_ratio(window: str) -> str:
    """The recorded failure share per channel over ``window`` (error and expired among the
    final outcomes; the same recording rules)."""
    return f"channel:qlara_delivery_failures:ratio_rate{window}"


#: The recorded event volume per channel over the last hour.
HOURLY_VOLUME = "channel:qlara_events:increase1h"


def explorer_link(page: str, *, by_channel: bool, title: str | None = None) -> Json:
    """A data link to the explorer's ``page`` over the ``window`` variable; for a series
    with a ``channel`` label, filtered to that channel when ``by_channel``."""
    query = "window=${window}"
    if by_channel:
        query = "channel=${__field.labels.channel}&" + query
    return {
        "title": title or f"Explorer: {page.replace('_', ' ')}",
        "url": f"${{explorer}}/{page}?{query}",
        "targetBlank": True,
    }


def _target(expr: str, legend: str = "", *, instant: bool = False, fmt: str = "") -> Json:
    target: Json = {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
    if instant:
        target.update(instant=True, range=False)
    else:
        target.update(instant=False, range=True)
    if fmt:
        target["format"] = fmt
    return target


def _thresholds(*steps: tuple[float, str]) -> Json:
    return {
        "mode": "absolute",
        "steps": [{"color": "green", "value": None}]
        + [{"color": color, "value": value} for value, color in steps],
    }


def _panel(
    kind: str,
    title: str,
    description: str,
    targets: list[Json],
    *,
    unit: str = "short",
    links: list[Json] | None = None,
    thresholds: Json | None = None,
    options: Json | None = None,
    custom: Json | None = None,
    minimum: float | None = None,
) -> Json:
    defaults: Json = {"unit": unit, "links": links or []}
    if thresholds is not None:
        defaults["thresholds"] = thresholds
    if custom is not None:
        defaults["custom"] = custom
    if minimum is not None:
        defaults["min"] = minimum
    for ref, target in zip("ABCDEFGH", targets, strict=False):
        target["refId"] = ref
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options or {},
        "targets": targets,
    }


def _timeseries(title: str, description: str, targets: list[Json], **kw: Any) -> Json:
    options = {
        "legend": {"displayMode": "table", "placement": "right", "calcs": ["lastNotNull", "max"]},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    return _panel("timeseries", title, description, targets, options=options, **kw)


def _stat(title: str, description: str, targets: list[Json], **kw: Any) -> Json:
    options = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "colorMode": "value",
        "graphMode": "none",
        "textMode": "auto",
        "orientation": "auto",
    }
    return _panel("stat", title, description, targets, options=options, **kw)


@dataclass
class _Grid:
    """Places panels left to right in rows of 24 columns, each section under a row header,
    and numbers them."""

    panels: list[Json] = field(default_factory=list)
    x: int = 0
    y: int = 0
    line_height: int = 0

    def row(self, title: str) -> None:
        self._newline()
        self._place({"type": "row", "title": title, "collapsed": False, "panels": []}, 24, 1)
        self._newline()

    def add(self, panel: Json, w: int, h: int) -> None:
        if self.x + w > 24:
            self._newline()
        self._place(panel, w, h)

    def _place(self, panel: Json, w: int, h: int) -> None:
        panel["id"] = len(self.panels) + 1
        panel["gridPos"] = {"x": self.x, "y": self.y, "w": w, "h": h}
        self.panels.append(panel)
        self.x += w
        self.line_height = max(self.line_height, h)

    def _newline(self) -> None:
        self.y += self.line_height
        self.x = 0
        self.line_height = 0


def _webhook_health(grid: _Grid) -> None:
    grid.row("Webhook health")
    grid.add(
        _stat(
            "Seconds since the last event",
            "Per channel, since the newest event the webhook accepted. A channel appears with "
            "its first event.",
            [
                _target(
                    "time() - max by (channel) "
                    f"(qlara_webhook_last_event_timestamp_seconds{{{CHANNEL}}})",
                    "{{channel}}",
                )
            ],
            unit="s",
            thresholds=_thresholds((900, "orange"), (1800, "red")),
            links=[explorer_link("webhook_health", by_channel=True)],
        ),
        8,
        6,
    )
    grid.add(
        _timeseries(
            "Events/s by channel and status",
            "Unique status events recorded (after deduplication).",
            [
                _target(
                    "sum by (channel, status) "
                    f"(rate(qlara_events_total{{{CHANNEL}}}[$__rate_interval]))",
                    "{{channel}} {{status}}",
                )
            ],
            unit="short",
            minimum=0,
            links=[explorer_link("overview", by_channel=True)],
        ),
        16,
        6,
    )
    grid.add(
        _timeseries(
            "Refused webhook requests/s, by outcome",
            "Requests the webhook did not take: the caller's (unauthorized, invalid, too "
            "large, wrong type or method) and ours (unavailable: neither Redis nor the spool "
            "could take the event, answered 503).",
            [
                _target(
                    "sum by (outcome) "
                    f'(rate(qlara_webhook_requests_total{{outcome=~"{_REFUSED}"}}'
                    "[$__rate_interval]))",
                    "{{outcome}}",
                )
            ],
            unit="reqps",
            minimum=0,
            links=[explorer_link("webhook_health", by_channel=False)],
        ),
        8,
        7,
    )
    grid.add(
        _timeseries(
            "Ack time",
            "Webhook request start to response sent. Qlara waits for the answer: a healthy "
            "webhook answers within 50 ms.",
            [
                _target(
                    "histogram_quantile(0.99, sum by (le) "
                    "(rate(qlara_webhook_ack_seconds_bucket[$__rate_interval])))",
                    "p99",
                ),
                _target(
                    "histogram_quantile(0.5, sum by (le) "
                    "(rate(qlara_webhook_ack_seconds_bucket[$__rate_interval])))",
                    "p50",
                ),
            ],
            unit="s",
            minimum=0,
        ),
        8,
        7,
    )
    grid.add(
        _timeseries(
            "Spool and queue backlog",
            "Events waiting in each receiver's local spool (Redis was down or slow), "
            "messages on the work queue, and dead letters not yet redriven.",
            [
                _target("sum by (instance) (qlara_spool_events)", "spool {{instance}}"),
                _target("max by (queue) (qlara_queue_messages)", "queue {{queue}}"),
            ],
            unit="short",
            minimum=0,
            links=[explorer_link("webhook_health", by_channel=False)],
        ),
        8,
        7,
    )
    grid.add(
        _timeseries(
            "Pending messages",
            "Messages sent with no final status yet, per channel (from the ledger).",
            [
                _target(
                    f"max by (channel) (qlara_messages_pending{{{CHANNEL}}})",
                    "{{channel}}",
                )
            ],
            unit="short",
            minimum=0,
            links=[explorer_link("stuck_messages", by_channel=True)],
        ),
        8,
        6,
    )
    grid.add(
        _timeseries(
            "Oldest pending message age",
            "Age of the oldest message sent with no final status, per channel.",
            [
                _target(
                    f"max by (channel) (qlara_messages_pending_oldest_age_seconds{{{CHANNEL}}})",
                    "{{channel}}",
                )
            ],
            unit="s",
            minimum=0,
            links=[explorer_link("stuck_messages", by_channel=True)],
        ),
        8,
        6,
    )
    grid.add(
        _stat(
            "Dead letters in the range",
            "Receipts written to the dead-letter table in the dashboard's time range, by "
            "reason; the explorer's webhook health page redrives them.",
            [
                _target(
                    "sum by (reason) (increase(qlara_dead_letters_total[$__range]))",
                    "{{reason}}",
                    instant=True,
                )
            ],
            unit="short",
            thresholds=_thresholds((1, "red")),
            links=[explorer_link("webhook_health", by_channel=False)],
        ),
        4,
        6,
    )
    grid.add(
        _stat(
            "Backends readable",
            "Whether each backend (ledger, Redis, spool) could be read at the last scrape: "
            "1 yes, 0 no (its gauges are then missing).",
            [_target("min by (source) (qlara_scrape_source_up)", "{{source}}", instant=True)],
            unit="short",
            thresholds={
                "mode": "absolute",
                "steps": [{"color": "red", "value": None}, {"color": "green", "value": 1}],
            },
        ),
        4,
        6,
    )


def _delivery(grid: _Grid) -> None:
    grid.row("Delivery")
    budget = round(1 - SLO, 6)
    grid.add(
        _timeseries(
            "Delivered share per channel (5m)",
            "Delivered among the final outcomes (delivered, error, expired) over 5 minutes, "
            "from the recording rules. The SLO is the hidden variable slo.",
            [_target(f"1 - {failure_ratio('5m')}{{{CHANNEL}}}", "{{channel}}")],
            unit="percentunit",
            minimum=0,
            links=[explorer_link("overview", by_channel=True)],
        ),
        8,
        7,
    )
    grid.add(
        _timeseries(
            "Failure share per channel (5m)",
            "Error and expired among the final outcomes over 5 minutes, from the recording "
            "rules; red above the error budget (1 - SLO).",
            [_target(f"{failure_ratio('5m')}{{{CHANNEL}}}", "{{channel}}")],
            unit="percentunit",
            minimum=0,
            thresholds=_thresholds((budget, "red")),
            custom={"thresholdsStyle": {"mode": "line"}},
            links=[explorer_link("failures", by_channel=True)],
        ),
        8,
        7,
    )
    grid.add(
        _stat(
            "Failure share per channel (1h, 1d, 3d)",
            "The same share over the windows the error-budget alerts read.",
            [
                _target(f"{failure_ratio(w)}{{{CHANNEL}}}", f"{{{{channel}}}} {w}", instant=True)
                for w in ("1h", "1d", "3d")
            ],
            unit="percentunit",
            thresholds=_thresholds((budget, "red")),
            links=[explorer_link("failures", by_channel=True)],
        ),
        8,
        7,
    )
    grid.add(
        _timeseries(
            "Error-budget burn rate",
            "How many times faster than the SLO allows deliveries fail: the failure share "
            "over the error budget (1 - SLO). 1 spends the budget in exactly its period; the "
            "fast-burn alert pages at 14.4 over 1h (and 5m).",
            [
                _target(
                    f"{failure_ratio(w)}{{{CHANNEL}}} / (1 - $slo)",
                    f"{{{{channel}}}} {w}",
                )
                for w in ("1h", "6h", "1d")
            ],
            unit="short",
            minimum=0,
            thresholds=_thresholds((1, "orange"), (14.4, "red")),
            custom={"thresholdsStyle": {"mode": "line"}},
            links=[explorer_link("failures", by_channel=True)],
        ),
        12,
        7,
    )
    grid.add(
        _timeseries(
            "Delivery errors/s by class",
            "Error and expired events by error class; the raw texts are in the explorer.",
            [
                _target(
                    "sum by (reason) "
                    f"(rate(qlara_delivery_errors_total{{{CHANNEL}}}[$__rate_interval]))",
                    "{{reason}}",
                )
            ],
            unit="short",
            minimum=0,
            custom={"stacking": {"mode": "normal"}, "fillOpacity": 30},
            links=[explorer_link("failures", by_channel=False)],
        ),
        12,
        7,
    )
    delivered = f'qlara_delivery_latency_seconds_bucket{{{CHANNEL}, outcome="delivered"}}'
    grid.add(
        _timeseries(
            "Sent -> delivered latency",
            "From a message's sent event to its delivered event, by event time.",
            [
                _target(
                    f"histogram_quantile({q}, sum by (le) (rate({delivered}[$__rate_interval])))",
                    f"p{round(q * 100)}",
                )
                for q in (0.5, 0.95, 0.99)
            ],
            unit="s",
            minimum=0,
            links=[explorer_link("overview", by_channel=False)],
        ),
        8,
        8,
    )
    grid.add(
        _panel(
            "heatmap",
            "Sent -> delivered latency distribution",
            "Messages delivered in each latency bucket, per interval.",
            [
                _target(
                    f"sum by (le) (increase({delivered}[$__rate_interval]))",
                    "{{le}}",
                    fmt="heatmap",
                )
            ],
            unit="short",
            options={
                "calculate": False,
                "cellGap": 1,
                "color": {"mode": "scheme", "scheme": "Oranges", "steps": 64},
                "rowsFrame": {"layout": "le"},
                "yAxis": {"unit": "s"},
                "tooltip": {"show": True, "yHistogram": True},
            },
        ),
        8,
        8,
    )
    grid.add(
        _timeseries(
            "Webhook delay p95 per channel",
            "Event time to receipt: how late Qlara reports.",
            [
                _target(
                    "histogram_quantile(0.95, sum by (channel, le) "
                    f"(rate(qlara_webhook_delay_seconds_bucket{{{CHANNEL}}}[$__rate_interval])))",
                    "{{channel}}",
                )
            ],
            unit="s",
            minimum=0,
            links=[explorer_link("webhook_health", by_channel=True)],
        ),
        8,
        8,
    )
    grid.add(
        _stat(
            "Events in the last hour per channel",
            "Unique events recorded over the last hour, from the recording rules.",
            [_target(f"{HOURLY_VOLUME}{{{CHANNEL}}}", "{{channel}}", instant=True)],
            unit="short",
            links=[explorer_link("overview", by_channel=True)],
        ),
        24,
        4,
    )


def _alerts_and_build(grid: _Grid) -> None:
    grid.row("Alerts and build")
    grid.add(
        _panel(
            "table",
            "Firing alerts",
            "qlara-sidecar alerts firing now (the Watchdog always fires: its absence means "
            "the rules are not loaded). Each alert's runbook and explorer view are in its "
            "notification.",
            [
                _target(
                    'ALERTS{service="qlara-sidecar", alertstate="firing"}',
                    instant=True,
                    fmt="table",
                )
            ],
            options={"showHeader": True, "footer": {"show": False}},
            links=[explorer_link("overview", by_channel=False)],
        ),
        16,
        8,
    )
    grid.add(
        _panel(
            "table",
            "Build",
            "Scrape targets by qlara-sidecar version.",
            [
                _target(
                    "count by (version) (qlara_build_info)",
                    instant=True,
                    fmt="table",
                )
            ],
            options={"showHeader": True, "footer": {"show": False}},
        ),
        8,
        8,
    )


def _variables() -> list[Json]:
    def fixed(value: str) -> Json:
        return {"selected": True, "text": value, "value": value}

    channels_query = "label_values(qlara_events_total, channel)"
    return [
        {
            "name": "datasource",
            "label": "Prometheus",
            "type": "datasource",
            "query": "prometheus",
            "current": {},
            "options": [],
            "refresh": 1,
            "regex": "",
            "hide": 0,
        },
        {
            "name": "channel",
            "label": "Channel",
            "type": "query",
            "datasource": DATASOURCE,
            "definition": channels_query,
            "query": {"query": channels_query, "refId": "channel"},
            "refresh": 2,
            "multi": True,
            "includeAll": True,
            "allValue": ".*",
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "options": [],
            "regex": "",
            "sort": 1,
            "hide": 0,
        },
        {
            "name": "window",
            "label": "Explorer window",
            "description": "The window of the explorer views the links open.",
            "type": "custom",
            "query": ",".join(EXPLORER_WINDOWS),
            "current": fixed(EXPLORER_WINDOW),
            "options": [
                {"selected": w == EXPLORER_WINDOW, "text": w, "value": w} for w in EXPLORER_WINDOWS
            ],
            "multi": False,
            "includeAll": False,
            "hide": 0,
        },
        {
            "name": "explorer",
            "label": "Explorer URL",
            "description": "Base URL of the delivery explorer the links open.",
            "type": "textbox",
            "query": EXPLORER_URL,
            "current": fixed(EXPLORER_URL),
            "options": [fixed(EXPLORER_URL)],
            "hide": 2,
        },
        {
            "name": "slo",
            "label": "Delivery SLO",
            "description": "Share of final outcomes that are delivered; the error budget is "
            "1 - slo.",
            "type": "constant",
            "query": str(SLO),
            "current": fixed(str(SLO)),
            "options": [fixed(str(SLO))],
            "hide": 2,
        },
    ]


def _dashboard_links() -> list[Json]:
    return [
        {
            "title": f"Explorer: {page.replace('_', ' ')}",
            "type": "link",
            "url": f"${{explorer}}/{page}?window=${{window}}",
            "tooltip": "Opens the delivery explorer over the selected window, every channel.",
            "icon": "external link",
            "targetBlank": True,
            "asDropdown": False,
            "includeVars": False,
            "keepTime": False,
            "tags": [],
        }
        for page in _LINKED_PAGES
    ]


def dashboard() -> Json:
    """The whole dashboard, as Grafana imports it."""
    grid = _Grid()
    _webhook_health(grid)
    _delivery(grid)
    _alerts_and_build(grid)
    return {
        "uid": UID,
        "title": TITLE,
        "description": "Webhook health and delivery outcomes of qlara-sidecar, from Prometheus.",
        "tags": ["qlara-sidecar"],
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "liveNow": False,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "fiscalYearStartMonth": 0,
        "annotations": {"list": []},
        "links": _dashboard_links(),
        "templating": {"list": _variables()},
        "panels": grid.panels,
    }


def render() -> str:
    """The dashboard file's text: indented JSON, keys in a stable order, ending in a newline."""
    return json.dumps(dashboard(), indent=2) + "\n"
