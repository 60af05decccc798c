"""The qlara-sidecar dashboard for SREs, built with Grafana's typed SDK
(``grafana-foundation-sdk``, the builders of Grafana 11.6's schema, version 41).

Four rows: is the webhook healthy (last event per channel, events/s, refused requests,
ack time, spool, queue and pending messages), are messages delivered (delivered and failed
shares from the recording rules in ``alerts/rules/``, error-budget burn, error classes,
sent -> delivered latency overall and per channel, failures by destination country, how
late Qlara reports), what the webhook repeated or the reconciler filled in (duplicates,
inbound replies, polls, Qlara's API, the webhook registration), and what fires
(``ALERTS``) on which build. Every query reads the metrics the README's metrics table names,
or series those recording rules write.

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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from grafana_foundation_sdk.builders import dashboard as board
from grafana_foundation_sdk.builders import heatmap, prometheus, stat, table, timeseries
from grafana_foundation_sdk.builders.common import (
    GraphThresholdsStyleConfig,
    ReduceDataOptions,
    StackingConfig,
    TableFooterOptions,
    VizLegendOptions,
    VizTooltipOptions,
)
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models import heatmap as heatmap_model
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from metrics.definitions import REQUEST_OUTCOMES

Json = dict[str, Any]

#: Where the committed dashboard lives (``python -m metrics.grafana`` writes it).
DASHBOARD_FILE = Path(__file__).parent / "dashboards" / "qlara-sidecar.json"
#: The dashboard's fixed uid: links and bookmarks to it survive a re-import.
UID = "qlara-sidecar"
TITLE = "qlara-sidecar"
SCHEMA_VERSION = 41
#: The Grafana whose schema the SDK's builders write, and which compose.yaml runs.
GRAFANA_VERSION = "11.6.0"
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
DATASOURCE = model.DataSourceRef(type_val="prometheus", uid="${datasource}")
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


def explorer_link(page: str, *, by_channel: bool, title: str | None = None) -> board.DashboardLink:
    """A data link to the explorer's ``page`` over the ``window`` variable; for a series
    with a ``channel`` label, filtered to that channel when ``by_channel``."""
    query = "window=${window}"
    if by_channel:
        query = "channel=${__field.labels.channel}&" + query
    return (
        board.DashboardLink(title or f"Explorer: {page.replace('_', ' ')}")
        .type(model.DashboardLinkType.LINK)
        .url(f"${{explorer}}/{page}?{query}")
        .target_blank(True)
    )


def _query(
    expr: str, legend: str = "", *, instant: bool = False, fmt: PromQueryFormat | None = None
) -> prometheus.Dataquery:
    query = prometheus.Dataquery().expr(expr).legend_format(legend).datasource(DATASOURCE)
    query = query.instant() if instant else query.range()
    return query.format(fmt) if fmt is not None else query


def _thresholds(*steps: tuple[float, str], base: str = "green") -> board.ThresholdsConfig:
    return (
        board.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps(
            [model.Threshold(color=base, value=None)]
            + [model.Threshold(color=color, value=value) for value, color in steps]
        )
    )


class _Panel(Protocol):
    """What every panel builder of the SDK offers that the helpers below set."""

    def id(self, id_val: int) -> Any: ...
    def span(self, w: int) -> Any: ...
    def height(self, h: int) -> Any: ...
    def build(self) -> Any: ...


def _common(
    panel: Any,
    title: str,
    description: str,
    queries: Sequence[prometheus.Dataquery],
    *,
    unit: str = "short",
    links: Sequence[board.DashboardLink] = (),
    thresholds: board.ThresholdsConfig | None = None,
    minimum: float | None = None,
) -> Any:
    panel = (
        panel.title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .data_links(list(links))
    )
    for ref, query in zip("ABCDEFGH", queries, strict=False):
        panel = panel.with_target(query.ref_id(ref))
    if thresholds is not None:
        panel = panel.thresholds(thresholds)
    if minimum is not None:
        panel = panel.min(minimum)
    return panel


def _timeseries(
    title: str,
    description: str,
    queries: Sequence[prometheus.Dataquery],
    *,
    threshold_lines: bool = False,
    stacked: bool = False,
    **kw: Any,
) -> timeseries.Panel:
    panel = _common(timeseries.Panel(), title, description, queries, **kw)
    panel = panel.legend(
        VizLegendOptions()
        .display_mode(common.LegendDisplayMode.TABLE)
        .placement(common.LegendPlacement.RIGHT)
        .show_legend(True)
        .calcs(["lastNotNull", "max"])
    ).tooltip(
        VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI).sort(common.SortOrder.DESCENDING)
    )
    if threshold_lines:
        panel = panel.thresholds_style(
            GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.LINE)
        )
    if stacked:
        panel = panel.stacking(StackingConfig().mode(common.StackingMode.NORMAL)).fill_opacity(30)
    return panel  # type: ignore[no-any-return]


def _stat(
    title: str, description: str, queries: Sequence[prometheus.Dataquery], **kw: Any
) -> stat.Panel:
    panel = _common(stat.Panel(), title, description, queries, **kw)
    return (  # type: ignore[no-any-return]
        panel.reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False))
        .color_mode(common.BigValueColorMode.VALUE)
        .graph_mode(common.BigValueGraphMode.NONE)
        .text_mode(common.BigValueTextMode.AUTO)
        .orientation(common.VizOrientation.AUTO)
    )


def _table(
    title: str, description: str, queries: Sequence[prometheus.Dataquery], **kw: Any
) -> table.Panel:
    panel = _common(table.Panel(), title, description, queries, **kw)
    return panel.show_header(True).footer(TableFooterOptions().show(False))  # type: ignore[no-any-return]


@dataclass
class _Grid:
    """The dashboard's panels in reading order, each with its width and height: the SDK's
    dashboard builder places them left to right in rows of 24 columns (every line here
    fills its 24 exactly), each section under a row header; numbered as they come."""

    dashboard: board.Dashboard
    count: int = 0

    def row(self, title: str) -> None:
        self.count += 1
        self.dashboard.with_row(board.Row(title).id(self.count).collapsed(False))

    def add(self, panel: _Panel, w: int, h: int) -> None:
        self.count += 1
        self.dashboard.with_panel(panel.id(self.count).span(w).height(h))


def _webhook_health(grid: _Grid) -> None:
    grid.row("Webhook health")
    grid.add(
        _stat(
            "Seconds since the last event",
            "Per channel, since the newest event the webhook accepted. A channel appears with "
            "its first event.",
            [
                _query(
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
                _query(
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
                _query(
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
                _query(
                    "histogram_quantile(0.99, sum by (le) "
                    "(rate(qlara_webhook_ack_seconds_bucket[$__rate_interval])))",
                    "p99",
                ),
                _query(
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
                _query("sum by (instance) (qlara_spool_events)", "spool {{instance}}"),
                _query("max by (queue) (qlara_queue_messages)", "queue {{queue}}"),
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
                _query(
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
                _query(
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
                _query(
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
            [_query("min by (source) (qlara_scrape_source_up)", "{{source}}", instant=True)],
            unit="short",
            thresholds=_thresholds((1, "green"), base="red"),
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
            [_query(f"1 - {failure_ratio('5m')}{{{CHANNEL}}}", "{{channel}}")],
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
            [_query(f"{failure_ratio('5m')}{{{CHANNEL}}}", "{{channel}}")],
            unit="percentunit",
            minimum=0,
            thresholds=_thresholds((budget, "red")),
            threshold_lines=True,
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
                _query(f"{failure_ratio(w)}{{{CHANNEL}}}", f"{{{{channel}}}} {w}", instant=True)
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
                _query(
                    f"{failure_ratio(w)}{{{CHANNEL}}} / (1 - $slo)",
                    f"{{{{channel}}}} {w}",
                )
                for w in ("1h", "6h", "1d")
            ],
            unit="short",
            minimum=0,
            thresholds=_thresholds((1, "orange"), (14.4, "red")),
            threshold_lines=True,
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
                _query(
                    "sum by (reason) "
                    f"(rate(qlara_delivery_errors_total{{{CHANNEL}}}[$__rate_interval]))",
                    "{{reason}}",
                )
            ],
            unit="short",
            minimum=0,
            stacked=True,
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
                _query(
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
        _common(
            heatmap.Panel(),
            "Sent -> delivered latency distribution",
            "Messages delivered in each latency bucket, per interval.",
            [
                _query(
                    f"sum by (le) (increase({delivered}[$__rate_interval]))",
                    "{{le}}",
                    fmt=PromQueryFormat.HEATMAP,
                )
            ],
        )
        .calculate(False)
        .cell_gap(1)
        .color(
            heatmap.HeatmapColorOptions()
            .mode(heatmap_model.HeatmapColorMode.SCHEME)
            .scheme("Oranges")
            .steps(64)
        )
        .rows_frame(heatmap.RowsHeatmapOptions().layout(common.HeatmapCellLayout.LE))
        .y_axis(heatmap.YAxisConfig().unit("s"))
        .show_y_histogram(),
        8,
        8,
    )
    grid.add(
        _timeseries(
            "Webhook delay p95 per channel",
            "Event time to receipt: how late Qlara reports.",
            [
                _query(
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
        _timeseries(
            "Sent -> delivered p95 per channel",
            "The 95th percentile of the sent -> delivered latency per channel, the figure the "
            "slow-delivery alert reads per channel.",
            [
                _query(
                    "histogram_quantile(0.95, sum by (channel, le) "
                    f"(rate({delivered}[$__rate_interval])))",
                    "{{channel}}",
                )
            ],
            unit="s",
            minimum=0,
            links=[explorer_link("overview", by_channel=True)],
        ),
        12,
        7,
    )
    by_country = "qlara_delivery_latency_by_country_seconds_count"
    grid.add(
        _timeseries(
            "Failure share by destination country (1h)",
            "Error and expired among the final outcomes per destination country over the "
            "last hour, per message with a known send time. The country label names the "
            "countries COUNTRY_LABELS names (the most frequent by default); the rest are "
            "other, messages whose phone is not known unknown. Operators and spend are in "
            "the explorer.",
            [
                _query(
                    f'sum by (country) (increase({by_country}{{outcome=~"error|expired"}}[1h])) '
                    f"/ sum by (country) (increase({by_country}[1h]))",
                    "{{country}}",
                )
            ],
            unit="percentunit",
            minimum=0,
            thresholds=_thresholds((budget, "red")),
            threshold_lines=True,
            links=[explorer_link("failures", by_channel=False)],
        ),
        12,
        7,
    )
    grid.add(
        _stat(
            "Events in the last hour per channel",
            "Unique events recorded over the last hour, from the recording rules.",
            [_query(f"{HOURLY_VOLUME}{{{CHANNEL}}}", "{{channel}}", instant=True)],
            unit="short",
            links=[explorer_link("overview", by_channel=True)],
        ),
        24,
        4,
    )


def _repeats_and_reconciler(grid: _Grid) -> None:
    grid.row("Duplicates, replies and the reconciler")
    grid.add(
        _timeseries(
            "Duplicate events/s per channel",
            "Events Qlara sent again that were already recorded (counted once in the ledger).",
            [
                _query(
                    "sum by (channel) "
                    f"(rate(qlara_duplicate_events_total{{{CHANNEL}}}[$__rate_interval]))",
                    "{{channel}}",
                )
            ],
            minimum=0,
            links=[explorer_link("webhook_health", by_channel=True)],
        ),
        8,
        7,
    )
    grid.add(
        _timeseries(
            "Inbound replies/s",
            "Replies from recipients recorded (after deduplication), kept apart from statuses.",
            [_query("sum(rate(qlara_inbound_replies_total[$__rate_interval]))", "replies")],
            minimum=0,
        ),
        8,
        7,
    )
    grid.add(
        _stat(
            "Webhook registration",
            "1 when the webhook URL on file with Qlara is WEBHOOK_PUBLIC_URL; else 0 and why "
            "(none: no URL on file; replaced: another URL; unknown: the check failed). Absent "
            "when the reconciler is off.",
            [_query("max by (reason) (qlara_webhook_registration_ok)", "{{reason}}", instant=True)],
            thresholds=_thresholds((1, "green"), base="red"),
        ),
        8,
        7,
    )
    grid.add(
        _timeseries(
            "Reconciler polls/s by result",
            "Messages the reconciler asked Qlara's status API about, by what it learnt "
            "(filled: a final status the webhook never delivered).",
            [
                _query(
                    "sum by (result) (rate(qlara_reconcile_polls_total[$__rate_interval]))",
                    "{{result}}",
                )
            ],
            minimum=0,
            links=[explorer_link("webhook_health", by_channel=False)],
        ),
        8,
        7,
    )
    grid.add(
        _timeseries(
            "Statuses filled by polling/s per channel",
            "Final statuses the webhook never delivered, filled in from Qlara's status API.",
            [
                _query(
                    "sum by (channel) "
                    f"(rate(qlara_reconcile_filled_total{{{CHANNEL}}}[$__rate_interval]))",
                    "{{channel}}",
                )
            ],
            minimum=0,
            links=[explorer_link("webhook_health", by_channel=True)],
        ),
        8,
        7,
    )
    grid.add(
        _timeseries(
            "Qlara API requests/s by endpoint and code",
            "Calls to Qlara's API (status, status_batch, webhook) by HTTP status, error for "
            "no answer; 429s mean the reconciler met Qlara's rate limits.",
            [
                _query(
                    "sum by (endpoint, code) (rate(qlara_api_requests_total[$__rate_interval]))",
                    "{{endpoint}} {{code}}",
                )
            ],
            unit="reqps",
            minimum=0,
        ),
        8,
        7,
    )


def _alerts_and_build(grid: _Grid) -> None:
    grid.row("Alerts and build")
    grid.add(
        _table(
            "Firing alerts",
            "qlara-sidecar alerts firing now (the Watchdog always fires: its absence means "
            "the rules are not loaded). Each alert's runbook and explorer view are in its "
            "notification.",
            [
                _query(
                    'ALERTS{service="qlara-sidecar", alertstate="firing"}',
                    instant=True,
                    fmt=PromQueryFormat.TABLE,
                )
            ],
            links=[explorer_link("overview", by_channel=False)],
        ),
        16,
        8,
    )
    grid.add(
        _table(
            "Build",
            "Scrape targets by qlara-sidecar version.",
            [
                _query(
                    "count by (version) (qlara_build_info)",
                    instant=True,
                    fmt=PromQueryFormat.TABLE,
                )
            ],
        ),
        8,
        8,
    )


def _variables() -> list[Any]:
    def fixed(value: str) -> model.VariableOption:
        return model.VariableOption(selected=True, text=value, value=value)

    return [
        board.DatasourceVariable("datasource").label("Prometheus").type("prometheus"),
        board.QueryVariable("channel")
        .label("Channel")
        .datasource(DATASOURCE)
        .query({"query": "label_values(qlara_events_total, channel)", "refId": "channel"})
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(model.VariableOption(selected=True, text=["All"], value=["$__all"]))
        .sort(model.VariableSort.ALPHABETICAL_ASC),
        board.CustomVariable("window")
        .label("Explorer window")
        .description("The window of the explorer views the links open.")
        .values(",".join(EXPLORER_WINDOWS))
        .current(fixed(EXPLORER_WINDOW))
        .options(
            [
                model.VariableOption(selected=w == EXPLORER_WINDOW, text=w, value=w)
                for w in EXPLORER_WINDOWS
            ]
        )
        .multi(False)
        .include_all(False),
        board.TextBoxVariable("explorer")
        .label("Explorer URL")
        .description("Base URL of the delivery explorer the links open.")
        .default_value(EXPLORER_URL)
        .current(fixed(EXPLORER_URL))
        .options([fixed(EXPLORER_URL)])
        .hide(model.VariableHide.HIDE_VARIABLE),
        board.ConstantVariable("slo")
        .label("Delivery SLO")
        .description("Share of final outcomes that are delivered; the error budget is 1 - slo.")
        .value(str(SLO)),
    ]


def _dashboard_links() -> list[cogbuilder.Builder[model.DashboardLink]]:
    return [
        board.DashboardLink(f"Explorer: {page.replace('_', ' ')}")
        .type(model.DashboardLinkType.LINK)
        .url(f"${{explorer}}/{page}?window=${{window}}")
        .tooltip("Opens the delivery explorer over the selected window, every channel.")
        .icon("external link")
        .target_blank(True)
        .as_dropdown(False)
        .include_vars(False)
        .keep_time(False)
        .tags([])
        for page in _LINKED_PAGES
    ]


def dashboard() -> Json:
    """The whole dashboard, as Grafana imports it."""
    built = (
        board.Dashboard(TITLE)
        .uid(UID)
        .description("Webhook health and delivery outcomes of qlara-sidecar, from Prometheus.")
        .tags(["qlara-sidecar"])
        .version(1)
        .editable()
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .live_now(False)
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("browser")
        .fiscal_year_start_month(0)
        .links(_dashboard_links())
        .variables(_variables())
    )
    grid = _Grid(built)
    _webhook_health(grid)
    _delivery(grid)
    _repeats_and_reconciler(grid)
    _alerts_and_build(grid)
    document: Json = json.loads(json.dumps(built.build(), cls=JSONEncoder))
    return document


def render() -> str:
    """The dashboard file's text: indented JSON, keys in a stable order, ending in a newline."""
    return json.dumps(dashboard(), indent=2) + "\n"
