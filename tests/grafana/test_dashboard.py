"""The dashboard JSON, checked without Grafana: it is what the builder makes, its grid is
sound, every variable it uses is defined, every panel reads the chosen Prometheus, and every
link into the explorer follows the explorer's URL contract (alerts/links.py)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from alerts import PAGES, Thresholds, groups
from metrics.definitions import CHANNELS
from metrics.grafana import DASHBOARD_FILE, UID, dashboard, render
from metrics.grafana.__main__ import main
from qlara.durations import prometheus_seconds as seconds
from tests.grafana.dashboard_json import (
    is_built_in,
    links,
    load,
    overlapping,
    panels,
    queries,
    referenced,
    strings,
    variables,
)

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


@pytest.fixture(scope="module")
def board() -> dict[str, Any]:
    return load()


def test_the_committed_dashboard_is_what_the_builder_makes() -> None:
    assert DASHBOARD_FILE.read_text() == render(), "run: python -m metrics.grafana"
    assert main(["--check"]) == 0


def test_the_dashboard_has_a_fixed_uid_its_title_and_a_current_schema(
    board: dict[str, Any],
) -> None:
    assert board["uid"] == UID == "qlara-sidecar"
    assert board["title"] == "qlara-sidecar"
    assert 36 <= board["schemaVersion"] <= 41


def test_compose_runs_the_grafana_the_dashboard_is_built_for() -> None:
    import yaml

    from metrics.grafana.dashboard import GRAFANA_VERSION

    compose = yaml.safe_load((DASHBOARD_FILE.parents[3] / "compose.yaml").read_text())
    assert compose["services"]["grafana"]["image"] == f"grafana/grafana:{GRAFANA_VERSION}"


def test_panel_ids_are_unique(board: dict[str, Any]) -> None:
    ids = [panel["id"] for panel in panels(board)]
    assert len(ids) == len(set(ids))
    assert len(ids) > 20


def test_every_panel_fits_within_24_columns(board: dict[str, Any]) -> None:
    for panel in panels(board):
        grid = panel["gridPos"]
        assert min(grid["x"], grid["y"]) >= 0, panel["title"]
        assert min(grid["w"], grid["h"]) > 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, f"{panel['title']}: {grid}"


def test_no_two_panels_overlap(board: dict[str, Any]) -> None:
    assert overlapping(panels(board)) == []


def test_overlaps_are_seen() -> None:
    def at(id_: int, x: int, y: int, w: int, h: int) -> dict[str, Any]:
        return {"id": id_, "gridPos": {"x": x, "y": y, "w": w, "h": h}}

    side_by_side = [at(1, 0, 0, 12, 4), at(2, 12, 0, 12, 4), at(3, 0, 4, 24, 1)]
    assert overlapping(side_by_side) == []
    assert overlapping([at(1, 0, 0, 12, 4), at(2, 11, 3, 4, 4)]) == [(1, 2)]


def test_the_rows_are_webhook_health_delivery_repeats_then_alerts(board: dict[str, Any]) -> None:
    rows = [panel["title"] for panel in board["panels"] if panel["type"] == "row"]
    assert rows == [
        "Webhook health",
        "Delivery",
        "Duplicates, replies and the reconciler",
        "Alerts and build",
    ]


def test_the_panels_a_grafana_user_looks_for_are_there(board: dict[str, Any]) -> None:
    exprs = {
        panel["title"]: " ".join(t["expr"] for t in panel.get("targets", ()))
        for panel in panels(board)
    }
    assert "qlara_duplicate_events_total" in exprs["Duplicate events/s per channel"]
    assert "qlara_inbound_replies_total" in exprs["Inbound replies/s"]
    # the latency alert is per channel: so is a panel
    assert "sum by (channel, le)" in exprs["Sent -> delivered p95 per channel"]
    assert "qlara_reconcile_polls_total" in exprs["Reconciler polls/s by result"]
    assert "qlara_reconcile_filled_total" in exprs["Statuses filled by polling/s per channel"]
    assert "qlara_api_requests_total" in exprs["Qlara API requests/s by endpoint and code"]
    assert "qlara_webhook_registration_ok" in exprs["Webhook registration"]
    assert "by (country)" in exprs["Failure share by destination country (1h)"]


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ('rate(x{channel=~"$channel"}[$__rate_interval])', {"channel", "__rate_interval"}),
        (
            "${explorer}/failures?channel=${__field.labels.channel}",
            {"explorer", "__field.labels.channel"},
        ),
        ("${channel:pipe} and [[window]]", {"channel", "window"}),
        ("no variable, {{channel}} is a legend", set()),
    ],
)
def test_variables_are_found_in_every_grafana_syntax(text: str, names: set[str]) -> None:
    assert referenced(text) == names


def test_every_variable_used_anywhere_is_defined_or_built_in(board: dict[str, Any]) -> None:
    defined = set(variables(board))
    used = set().union(*(referenced(text) for text in strings(board)))
    assert {"channel", "datasource", "explorer", "window", "slo"} <= used
    assert {name for name in used if not is_built_in(name)} - defined == set()


def test_the_channel_variable_lists_the_channels_events_were_recorded_on(
    board: dict[str, Any],
) -> None:
    channel = variables(board)["channel"]
    assert channel["type"] == "query"
    assert channel["query"]["query"] == "label_values(qlara_events_total, channel)"
    assert channel["multi"] is True
    assert channel["includeAll"] is True
    # Every query matches it as a regex, which All must be too
    assert channel["allValue"] == ".*"
    for query in queries(board):
        if "$channel" in query.expr:
            assert re.search(r'channel=~"\$channel"', query.expr), query.name()


def test_every_panel_and_query_reads_the_datasource_variable(board: dict[str, Any]) -> None:
    datasource = variables(board)["datasource"]
    assert datasource["type"] == "datasource"
    assert datasource["query"] == "prometheus"
    assert variables(board)["channel"]["datasource"] == DATASOURCE
    for panel in panels(board):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]


def test_every_explorer_link_follows_the_explorers_url_contract(board: dict[str, Any]) -> None:
    window_options = [option["value"] for option in variables(board)["window"]["options"]]
    assert all(seconds(window) > 0 for window in window_options)
    urls = links(board)
    assert len(urls) > len(PAGES)
    for url in urls:
        # {base}/{page}?channel={channel}&window={window}, channel left out for every channel
        assert url.startswith("${explorer}/"), url
        parts = urlsplit(url.removeprefix("${explorer}"))
        assert parts.path.removeprefix("/") in PAGES, url
        params = parse_qsl(parts.query)
        assert [key for key, _ in params] in (["window"], ["channel", "window"]), url
        values = dict(params)
        assert values["window"] == "${window}" or seconds(values["window"]) > 0, url
        if "channel" in values:
            assert values["channel"] in {"${__field.labels.channel}", *CHANNELS}, url


def test_panels_linking_a_series_to_its_channel_have_series_by_channel(
    board: dict[str, Any],
) -> None:
    by_channel = [
        panel
        for panel in panels(board)
        if any("${__field.labels.channel}" in link for link in links({"panels": [panel]}))
    ]
    assert by_channel
    for panel in by_channel:
        for target in panel["targets"]:
            expr = target["expr"]
            assert "by (channel" in expr or expr.lstrip("1 -").startswith("channel:"), expr


def test_the_explorer_url_and_the_slo_are_the_alerts_defaults(board: dict[str, Any]) -> None:
    defaults = Thresholds()
    assert variables(board)["explorer"]["current"]["value"] == defaults.explorer_url
    slo = variables(board)["slo"]
    assert slo["type"] == "constant"  # Grafana reads a constant's value from its query
    assert float(slo["query"]) == defaults.slo


def test_every_recorded_series_the_dashboard_reads_is_recorded_by_the_rules(
    board: dict[str, Any],
) -> None:
    recorded = {
        rule["record"]
        for group_list in groups(Thresholds()).values()
        for group in group_list
        for rule in group["rules"]
        if "record" in rule
    }
    read = {
        name
        for query in queries(board)
        for name in re.findall(r"\b[a-z_]+:[a-z_:0-9]+", query.expr)
    }
    assert "channel:qlara_delivery_failures:ratio_rate5m" in read
    assert read - recorded == set()


def test_the_builder_numbers_panels_in_reading_order() -> None:
    built = dashboard()
    positions = [(p["gridPos"]["y"], p["gridPos"]["x"]) for p in built["panels"]]
    assert positions == sorted(positions)
    assert [p["id"] for p in built["panels"]] == list(range(1, len(positions) + 1))
