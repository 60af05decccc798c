"""Every query of the dashboard is PromQL that Prometheus accepts and answers with data.

Grafana's variables are replaced as Grafana would send them: the channel regex as All
(``.*``) and as one channel (``sms``), ``$__rate_interval`` by 15s (Prometheus scrapes every
second here), ``$__range`` by 1m, the other variables by their current values.

1. promtool parses each one (as a recording rule of a temporary rule file: promtool cannot
   parse a bare query offline).
2. A real Prometheus scraping `qlara-sidecar up` every second, with the recording and alert
   rules of alerts/rules/ evaluated every second, while the simulator sends traffic with
   failures and a few requests are refused, its reconciler asking a fake Qlara: each query
   returns at least one finite value, and each panel that links a series to its channel's
   explorer view gets series with a ``channel`` label. The Watchdog alert (always firing)
   gives ``ALERTS`` a series.
"""

from __future__ import annotations

import math
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.alerts.pipeline import Service, Simulators, prometheus, query
from tests.e2e.sidecar_process import Sidecar, wait_for
from tests.fake_qlara import API_KEY
from tests.grafana.dashboard_json import Query, concrete, links, load, panels, queries

ROOT = Path(__file__).resolve().parents[2]
RULES = sorted((ROOT / "alerts" / "rules").glob("*.yml"))
CHANNEL_VALUES = (".*", "sms")


def concrete_queries(board: dict[str, Any]) -> list[tuple[Query, str, str]]:
    """(query, channel value, concrete expression) for every query and channel value."""
    return [
        (q, channel, concrete(q.expr, board, channel))
        for q in queries(board)
        for channel in CHANNEL_VALUES
    ]


def test_promtool_parses_every_query(promtool: str, tmp_path: Path) -> None:
    # Given every query as a recording rule
    board = load()
    exprs = concrete_queries(board)
    assert all("$" not in expr for _, _, expr in exprs)
    rules = [
        {"record": f"dashboard:panel{q.panel_id}_{q.ref}:{i}", "expr": expr}
        for i, (q, _, expr) in enumerate(exprs)
    ]
    path = tmp_path / "dashboard.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))

    # When promtool checks the file
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )

    # Then it finds every rule sound
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_promtool_refuses_a_broken_query(promtool: str, tmp_path: Path) -> None:
    # The check above would catch a typo: the same file with one bracket missing fails
    rule = {"record": "dashboard:broken", "expr": "sum(rate(qlara_events_total[15s])"}
    path = tmp_path / "broken.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": [rule]}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0


def _finite(result: list[dict[str, Any]]) -> bool:
    return any(math.isfinite(float(sample["value"][1])) for sample in result)


@pytest.mark.e2e
def test_every_query_returns_data_from_a_prometheus_scraping_the_sidecar_under_traffic(
    make_sidecar: Any,
    serve_fake: Any,
    prometheus_binary: str,
    simulators: list[Simulators],
    services: list[Service],
    tmp_path: Path,
) -> None:
    # Given the sidecar, its reconciler on (Qlara's API: the fake, which checks the webhook
    # registration), and a Prometheus scraping it every second with alerts/rules/ loaded
    fake = serve_fake()
    sidecar: Sidecar = make_sidecar(
        workers="1",
        qlara_api_key=API_KEY,
        qlara_api_url=fake.api,
        webhook_public_url="https://hooks.example.com/webhook/grafana-token-0123456789",
        reconcile_interval="1",
    ).start()
    server = prometheus(
        prometheus_binary,
        tmp_path / "prometheus",
        job="qlara-sidecar",
        target=f"127.0.0.1:{sidecar.port}",
        rule_files=RULES,
    )
    services.append(server)
    server.start()
    wait_for(
        lambda: query(server, 'up{job="qlara-sidecar"} == 1'),
        timeout=60,
        what="Prometheus to scrape the sidecar",
    )

    # When Qlara sends traffic on every channel, a third of the final statuses errors, and
    # a few requests are refused
    traffic = Simulators(sidecar, tmp_path)
    simulators.append(traffic)
    traffic.start(
        "--rate", "40", "--time-scale", "0.01", "--seed", "11",
        "--error-burst", "0:300:0.3", "--duration", "300",
    )  # fmt: skip
    refused = [
        httpx.post(sidecar.webhook_url, content=b"{not json", timeout=10).status_code,
        httpx.post(f"{sidecar.base_url}/webhook/wrong-token", json={}, timeout=10).status_code,
    ]
    assert refused == [400, 401]

    # Then every query returns data, sooner or later
    board = load()
    exprs = concrete_queries(board)
    missing: dict[str, str] = {}

    def every_query_answers() -> bool:
        missing.clear()
        for q, channel, expr in exprs:
            result = query(server, expr)
            if not _finite(result):
                missing[f"{q.name()} channel={channel}"] = f"{expr} -> {result}"
        return not missing

    try:
        wait_for(every_query_answers, timeout=60, what="every dashboard query to return data")
    except AssertionError as exc:
        lines = "\n".join(f"  {name}: {why}" for name, why in missing.items())
        raise AssertionError(f"{exc}\nwithout data:\n{lines}") from None

    # And the panels that link a series to its channel's view get series by channel
    for panel in panels(board):
        if not any("${__field.labels.channel}" in url for url in links({"panels": [panel]})):
            continue
        for target in panel["targets"]:
            result = query(server, concrete(target["expr"], board, ".*"))
            assert all("channel" in sample["metric"] for sample in result), panel["title"]

    # And the firing alerts panel shows the Watchdog at least
    alerts = query(server, concrete(_alerts_query(board), board, ".*"))
    assert "Watchdog" in {sample["metric"]["alertname"] for sample in alerts}

    # And the channel variable lists the channels the simulator sent on
    response = httpx.get(
        f"{server.url}/api/v1/label/channel/values",
        params={"match[]": "qlara_events_total"},
        timeout=10,
    )
    assert {"sms", "rcs", "whatsapp"} <= set(response.json()["data"])


def _alerts_query(board: dict[str, Any]) -> str:
    (expr,) = [q.expr for q in queries(board) if q.expr.startswith("ALERTS")]
    return expr
