"""Reading the committed dashboard as Grafana would: its panels, queries, variables and
links, and its queries with the variables replaced by concrete values."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from metrics.grafana import DASHBOARD_FILE

#: ``$name``, ``${name}``, ``${name:format}``, ``[[name]]``: Grafana's variable syntaxes.
VARIABLE = re.compile(
    r"\$\{(?P<braced>[^}:]+)(?::[^}]*)?\}|\$(?P<plain>[A-Za-z_]\w*)|\[\[(?P<old>[^\]:]+)"
    r"(?::[^\]]*)?\]\]"
)
#: Grafana's own variables: interval and range of a query, and a data link's field,
#: value, series and row.
BUILT_INS = {
    "__rate_interval",
    "__interval",
    "__interval_ms",
    "__range",
    "__range_s",
    "__range_ms",
    "__from",
    "__to",
    "__all",
    "__dashboard",
    "__org",
    "__user",
    "__timezone",
    "__url_time_range",
}
BUILT_IN_PREFIXES = ("__field.", "__value.", "__series.", "__data.")

#: What the built-ins in queries stand for in a test: Prometheus scrapes every second.
CONCRETE_BUILT_INS = {"__rate_interval": "15s", "__interval": "1s", "__range": "1m"}


def load() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD_FILE.read_text()))


@dataclass(frozen=True)
class Query:
    """One target of one panel."""

    panel_id: int
    panel_title: str
    ref: str
    expr: str

    def name(self) -> str:
        return f"panel {self.panel_id} ({self.panel_title}) {self.ref}"


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, rows included, and those inside collapsed rows."""
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return list(found)


def queries(dashboard: dict[str, Any]) -> list[Query]:
    return [
        Query(panel["id"], panel["title"], target["refId"], target["expr"])
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
    ]


def variables(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {variable["name"]: variable for variable in dashboard["templating"]["list"]}


def strings(node: Any) -> Iterator[str]:
    """Every string in a JSON document, keys included."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def referenced(text: str) -> set[str]:
    """The variable names ``text`` refers to."""
    return {
        match.group("braced") or match.group("plain") or match.group("old")
        for match in VARIABLE.finditer(text)
    }


def is_built_in(name: str) -> bool:
    return name in BUILT_INS or name.startswith(BUILT_IN_PREFIXES)


def links(dashboard: dict[str, Any]) -> list[str]:
    """Every link URL: the dashboard's, and every panel's data links."""
    urls = [link["url"] for link in dashboard.get("links", [])]
    for panel in panels(dashboard):
        config = panel.get("fieldConfig", {})
        urls += [link["url"] for link in config.get("defaults", {}).get("links", [])]
        for override in config.get("overrides", []):
            for prop in override.get("properties", []):
                if prop.get("id") == "links":
                    urls += [link["url"] for link in prop["value"]]
        urls += [link["url"] for link in panel.get("links", [])]
    return urls


def concrete(expr: str, dashboard: dict[str, Any], channel: str) -> str:
    """``expr`` as Grafana would send it, with ``channel`` as the channel regex, the
    built-ins as in :data:`CONCRETE_BUILT_INS` and every other variable at its current
    value (a constant's is its query, as Grafana reads it). Raises ``KeyError`` for a
    variable with no such value."""
    values = dict(CONCRETE_BUILT_INS, channel=channel)
    for name, variable in variables(dashboard).items():
        current = variable.get("current", {}).get("value")
        if variable.get("type") == "constant":
            current = variable.get("query")
        if name not in values and isinstance(current, str):
            values[name] = current

    def value(match: re.Match[str]) -> str:
        return values[match.group("braced") or match.group("plain") or match.group("old")]

    return VARIABLE.sub(value, expr)


def overlapping(placed: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """The ids of every two panels whose ``gridPos`` rectangles share a cell."""
    pairs = []
    for i, a in enumerate(placed):
        for b in placed[i + 1 :]:
            pa, pb = a["gridPos"], b["gridPos"]
            if (
                pa["x"] < pb["x"] + pb["w"]
                and pb["x"] < pa["x"] + pa["w"]
                and pa["y"] < pb["y"] + pb["h"]
                and pb["y"] < pa["y"] + pa["h"]
            ):
                pairs.append((a["id"], b["id"]))
    return pairs
