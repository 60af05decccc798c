"""The single-process exposition: every series from its closed sets at 0, nothing promtool
objects to."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

import metrics
from metrics.definitions import label_sets
from tests.metrics.conftest import promtool_check


def test_every_label_combination_is_exposed_from_the_start() -> None:
    metrics.initialise()

    ledger_kept = metrics.StateCollector(recorded=dict)
    exposition = metrics.render([ledger_kept]).decode()
    families = {f.name: f for f in text_string_to_metric_families(exposition)}

    for name, combinations in label_sets().items():
        family = families[name]
        names = family.samples[0].labels.keys() if family.samples else ()
        seen = {tuple(s.labels[n] for n in names if n != "le") for s in family.samples}
        assert set(combinations) <= seen, name
    build = families["qlara_build_info"].samples
    assert any(s.value == 1 and s.labels["version"] for s in build)


def test_the_exposition_with_state_gauges_passes_promtool(promtool: str) -> None:
    metrics.initialise()
    state = metrics.StateCollector(
        pending=lambda: {"sms": metrics.Pending(2, 30.0)},
        work_queue=lambda: 1,
        dead_letters=lambda: 0,
        spool=lambda: 0,
        recorded=lambda: {("qlara_events", "sms", "sent"): 3, ("qlara_inbound_replies", "", ""): 1},
    )

    assert promtool_check(promtool, metrics.render([state])) == ""
