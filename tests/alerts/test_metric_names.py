"""The rules read only metrics the sidecar serves: every metric name in an expression is in a
real scrape of `qlara-sidecar up` (or is a recording rule's, or Prometheus's own ``up``)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from alerts import Thresholds, render
from tests.e2e.sidecar_process import wait_for
from tests.fake_qlara import API_KEY

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_LABEL_LISTS = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
_NUMBERS = re.compile(r"(?<![\w:])\d+(?:\.\d+)?(?:e[+-]?\d+)?(?:ms|[smhdwy])*(?![\w:])", re.I)
_NAMES = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*(?=\s*(\(?))")
_KEYWORDS = {"and", "or", "unless", "offset", "bool", "inf", "nan"}

#: Series Prometheus makes itself, not the sidecar.
PROMETHEUS_SERIES = {"up"}


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: identifiers that are not functions,
    aggregations, keywords, label names, label values or durations."""
    text = _STRINGS.sub(" ", expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _LABEL_LISTS.sub(" ", text)
    text = _NUMBERS.sub(" ", text)
    return {
        match.group(0)
        for match in _NAMES.finditer(text)
        if not match.group(1) and match.group(0).lower() not in _KEYWORDS
    }


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            'sum by (channel) (rate(a_total{status=~"x|y"}[5m])) / b:c:rate5m',
            {"a_total", "b:c:rate5m"},
        ),
        ('max(q{queue="work"}) >= 100 and on () max(deriv(q[10m])) > 0', {"q"}),
        ("sum(increase(r_total[1h] offset 1w)) >= 60 or on () vector(0)", {"r_total"}),
        ("histogram_quantile(0.95, sum by (le) (rate(h_bucket[5m]))) > 1e3", {"h_bucket"}),
        ('absent(up{job="x"}) or max by (job) (up) == 0', {"up"}),
    ],
)
def test_metric_names_are_read_out_of_an_expression(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def _annotation_queries(rule: dict[str, Any]) -> list[str]:
    """The PromQL that an alert's annotations run through the ``query`` template function
    (written in backticks; a ``printf`` verb stands for the alert's label value)."""
    texts = rule.get("annotations", {}).values()
    return [
        q.replace("%q", '"x"').replace("%s", "x")
        for t in texts
        for q in re.findall(r"`([^`]*)`", t)
    ]


def _rules() -> list[dict[str, Any]]:
    return [
        rule
        for text in render(Thresholds()).values()
        for group in yaml.safe_load(text)["groups"]
        for rule in group["rules"]
    ]


@pytest.mark.e2e
def test_every_metric_the_rules_read_is_in_a_real_scrape_of_the_sidecar(
    make_sidecar: Any, serve_fake: Any
) -> None:
    # Given a running sidecar, its reconciler on (Qlara's API: the fake), that has recorded a
    # message sent and still pending (so that the per-channel gauges that appear with a
    # first event are there too) and checked its webhook registration
    served = serve_fake()
    sidecar = make_sidecar(
        workers="1",
        qlara_api_key=API_KEY,
        qlara_api_url=served.api,
        webhook_public_url="https://hooks.example.com/webhook/names-token-0123456789",
        reconcile_interval="1",
    ).start()
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    body = {"messageId": "names-1", "status": "SENT", "timestamp": now, "channel": "sms"}
    response = httpx.post(sidecar.webhook_url, content=json.dumps(body), timeout=10)
    assert response.status_code == 200
    wait_for(lambda: sidecar.read("/v1/stats/webhook")["pending"] == 1, timeout=60, what="1")
    wait_for(
        lambda: "qlara_webhook_registration_ok{" in httpx.get(f"{sidecar.base_url}/metrics").text,
        timeout=60,
        what="the registration check",
    )

    # When it is scraped
    scrape = httpx.get(f"{sidecar.base_url}/metrics", timeout=10)
    scrape.raise_for_status()
    served = {
        sample.name
        for family in text_string_to_metric_families(scrape.text)
        for sample in family.samples
    }

    # Then every name an expression reads is served, recorded by a rule, or Prometheus's
    recorded = {rule["record"] for rule in _rules() if "record" in rule}
    expressions = [rule["expr"] for rule in _rules()]
    expressions += [query for rule in _rules() for query in _annotation_queries(rule)]
    assert len(expressions) > len(_rules())
    read = set().union(*(metric_names(expr) for expr in expressions))
    assert "qlara_messages_pending" in read
    assert "qlara_webhook_ack_seconds_bucket" in read
    assert read - served - recorded - PROMETHEUS_SERIES == set()
