"""The README is the contract users read: it must say what the code does."""

from __future__ import annotations

import re
from pathlib import Path

from sidecar.report import markdown_table

README = (Path(__file__).parent.parent / "README.md").read_text()


def _section(name: str) -> str:
    match = re.search(rf"<!-- {name}:start -->\n(.*?)\n?<!-- {name}:end -->", README, re.S)
    assert match, f"README has no {name} section"
    return match.group(1).strip()


def test_the_readme_settings_table_is_the_one_the_code_documents() -> None:
    # Regenerate with: qlara-sidecar config --markdown
    assert _section("settings") == markdown_table().strip()


def test_the_readme_thresholds_table_is_the_one_the_alert_rules_use() -> None:
    # Regenerate with: qlara-sidecar alerts thresholds --markdown
    from alerts import markdown_table as thresholds_table

    assert _section("thresholds") == thresholds_table().strip()


def test_the_quick_start_is_exactly_two_commands() -> None:
    quick = README.split("## Quick start", 1)[1].split("##", 1)[0]
    block = quick.split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["python3 dev.py up", "python3 dev.py test"]


def test_every_metric_the_code_defines_is_documented() -> None:
    import prometheus_client

    from metrics import definitions

    documented = _section("metrics")
    for value in vars(definitions).values():
        if isinstance(value, prometheus_client.Counter):
            assert f"`{value._name}_total`" in documented
        elif isinstance(value, definitions.LedgerCounter):
            assert f"`{value.name}_total`" in documented
        elif isinstance(value, prometheus_client.Gauge | prometheus_client.Histogram):
            assert f"`{value._name}`" in documented


def test_every_command_is_in_the_commands_section() -> None:
    from sidecar.cli import main

    documented = _section("commands")
    for name in main.commands:
        assert f"`qlara-sidecar {name}" in documented, f"{name} is not in the README's commands"
