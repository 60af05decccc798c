"""The rendered rules: the committed files are the code's output, and every alert carries
what the on-call person needs (severity, service, summary, numbers, runbook, explorer link)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from alerts import PAGES, Thresholds, groups, render, stale, thresholds_from
from alerts.links import CHANNEL_TEMPLATE, dashboard_url
from qlara.durations import prometheus_seconds as seconds

ALERTS_DIR = Path(__file__).resolve().parents[2] / "alerts"
RULES_DIR = ALERTS_DIR / "rules"

#: Every alert the issue lists, and its severity.
SEVERITIES = {
    "QlaraSidecarDown": "critical",
    "QlaraWebhookSilent": "critical",
    "QlaraWebhookChannelSilent": "warning",
    "QlaraMessagesStuck": "warning",
    "QlaraDeliveryFailureNearTotal": "critical",
    "QlaraDeliveryFailureBudgetBurn": "critical",
    "QlaraDeliveryFailureBudgetBurnSlow": "warning",
    "QlaraDeliveryFailureSpike": "warning",
    "QlaraDeliveryLatencyHigh": "warning",
    "QlaraWebhookDelayHigh": "warning",
    "QlaraWebhookRejecting": "warning",
    "QlaraWebhookGapsFilled": "warning",
    "QlaraWebhookReplaced": "critical",
    "QlaraAckSlow": "critical",
    "QlaraBacklog": "warning",
    "QlaraDeadLetters": "warning",
    "QlaraSpoolInUse": "warning",
    "Watchdog": "none",
}

#: The alerts that fire per channel, with a ``channel`` label.
CHANNEL_ALERTS = {
    "QlaraWebhookChannelSilent",
    "QlaraMessagesStuck",
    "QlaraDeliveryFailureNearTotal",
    "QlaraDeliveryFailureBudgetBurn",
    "QlaraDeliveryFailureBudgetBurnSlow",
    "QlaraDeliveryFailureSpike",
    "QlaraDeliveryLatencyHigh",
    "QlaraWebhookDelayHigh",
}


def alert_rules(thresholds: Thresholds | None = None) -> list[dict[str, Any]]:
    """Every alerting rule of the rendering, as Prometheus will read it from the files."""
    rendered = render(thresholds or Thresholds())
    return [
        rule
        for text in rendered.values()
        for group in yaml.safe_load(text)["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def rule_of(name: str, thresholds: Thresholds) -> dict[str, Any]:
    return next(rule for rule in alert_rules(thresholds) if rule["alert"] == name)


def test_the_committed_rule_files_are_what_the_default_thresholds_render() -> None:
    # Regenerate with: qlara-sidecar alerts render
    assert sorted(p.name for p in RULES_DIR.glob("*.yml")) == sorted(groups(Thresholds()))
    assert stale(Thresholds(), RULES_DIR) == []


def test_every_alert_of_the_issue_is_defined_with_its_severity() -> None:
    found = {rule["alert"]: rule["labels"]["severity"] for rule in alert_rules()}
    assert found == SEVERITIES


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_every_alert_carries_its_labels_and_the_four_annotations(rule: dict[str, Any]) -> None:
    assert rule["labels"]["service"] == "qlara-sidecar"
    assert rule["labels"]["severity"] in {"critical", "warning", "none"}
    assert set(rule["annotations"]) == {"summary", "description", "runbook_url", "dashboard_url"}
    assert all(value.strip() for value in rule["annotations"].values())


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_every_runbook_url_is_a_page_in_alerts_runbooks(rule: dict[str, Any]) -> None:
    url = rule["annotations"]["runbook_url"]
    assert url == f"{Thresholds().runbook_url}/{rule['alert']}.md"
    assert (ALERTS_DIR / "runbooks" / f"{rule['alert']}.md").is_file()


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_every_dashboard_url_opens_an_explorer_page_on_the_alerts_channel_and_window(
    rule: dict[str, Any],
) -> None:
    url = urlsplit(rule["annotations"]["dashboard_url"])
    query = parse_qs(url.query)

    assert f"{url.scheme}://{url.netloc}" == "http://127.0.0.1:8501"
    assert url.path.removeprefix("/") in PAGES
    assert seconds(query.pop("window")[0]) > 0
    # The channel filter is there exactly when the alert has a channel label to fill it in
    # (the promtool tests show which alerts have one).
    by_channel = rule["alert"] in CHANNEL_ALERTS
    assert query == ({"channel": [CHANNEL_TEMPLATE]} if by_channel else {})


def test_a_changed_threshold_reaches_the_expression_the_description_and_the_link() -> None:
    t = thresholds_from(
        {"silence": {"window": "20m"}, "explorer_url": "https://explorer.example.com/"}
    )

    rule = rule_of("QlaraWebhookSilent", t)

    assert '{outcome=~"accepted|spooled"}[20m])) == 0' in rule["expr"]
    assert "[15m]" not in rule["expr"]
    assert "for 20m while" in rule["annotations"]["description"]
    assert rule["annotations"]["dashboard_url"] == (
        "https://explorer.example.com/webhook_health?window=20m"
    )


def test_a_per_channel_threshold_makes_one_rule_per_channel_each_with_its_own_number() -> None:
    t = thresholds_from({"stuck": {"after": {"sms": "30m", "whatsapp": "2h"}}})

    rules = [rule for rule in alert_rules(t) if rule["alert"] == "QlaraMessagesStuck"]

    assert [(r["labels"]["channel"], r["expr"].rsplit(" > ", 1)[1]) for r in rules] == [
        ("sms", "1800"),
        ("rcs", "21600"),
        ("whatsapp", "7200"),
        ("other", "21600"),
    ]
    assert [
        parse_qs(urlsplit(r["annotations"]["dashboard_url"]).query)["window"] for r in rules
    ] == [
        ["30m"],
        ["6h"],
        ["2h"],
        ["6h"],
    ]


def test_the_burn_rate_alerts_follow_the_slo() -> None:
    t = thresholds_from({"slo": 0.99})

    expr = rule_of("QlaraDeliveryFailureBudgetBurn", t)["expr"]

    assert "channel:qlara_delivery_failures:ratio_rate1h / 0.01 > 14.4" in expr
    assert "channel:qlara_delivery_failures:ratio_rate5m / 0.01 > 14.4" in expr
    assert "channel:qlara_delivery_outcomes:rate1h * 3600 >= 50" in expr


def test_an_alert_window_of_its_own_gets_its_own_recording_rule() -> None:
    t = thresholds_from({"near_total": {"window": "20s"}})

    recorded = [
        rule["record"] for rule in groups(t)["recording.yml"][0]["rules"] if "record" in rule
    ]

    assert "channel:qlara_delivery_failures:ratio_rate20s" in recorded
    assert "channel:qlara_delivery_outcomes:rate20s" in recorded
    assert (
        "channel:qlara_delivery_failures:ratio_rate20s > 0.9"
        in (rule_of("QlaraDeliveryFailureNearTotal", t)["expr"])
    )


def test_the_dashboard_url_refuses_a_page_the_explorer_does_not_have() -> None:
    with pytest.raises(ValueError, match="not an explorer page"):
        dashboard_url("http://127.0.0.1:8501", "grafana", "1h", by_channel=False)  # type: ignore[arg-type]
