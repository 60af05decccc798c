"""Rule files as text: rendered from :class:`Thresholds`, written to a directory, compared.

The files in ``alerts/rules/`` are this module's output for the default thresholds; a test
renders them again and compares, so they cannot drift from the code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from alerts.rules import groups
from alerts.thresholds import Thresholds

#: The first lines of every rendered file.
HEADER = (
    "# Rendered by `qlara-sidecar alerts render` from the thresholds in alerts/thresholds.py\n"
    "# (and a --thresholds file, if one was given). Change those and render again; edits\n"
    "# made here are lost. alerts/README.md explains every alert.\n"
)


class _Dumper(yaml.SafeDumper):  # type: ignore[misc]  # PyYAML ships no type hints
    """Block style for multi-line strings, so expressions read as they are written."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _string)


def dump(document: Any) -> str:
    """``document`` as YAML: keys in their given order, long lines kept whole."""
    text: str = yaml.dump(
        document,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=1000,
    )
    return text


def render(thresholds: Thresholds) -> dict[str, str]:
    """Every rule file's text, by file name."""
    return {
        name: HEADER + dump({"groups": file_groups})
        for name, file_groups in groups(thresholds).items()
    }


def write(thresholds: Thresholds, out: Path) -> list[Path]:
    """Render into the directory ``out`` (created if missing); return the files written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render(thresholds).items():
        path = out / name
        path.write_text(text)
        written.append(path)
    return written


def stale(thresholds: Thresholds, out: Path) -> list[str]:
    """Names of the rule files in ``out`` that are missing or differ from a fresh render."""
    return [
        name
        for name, text in render(thresholds).items()
        if not (out / name).is_file() or (out / name).read_text() != text
    ]


def thresholds_yaml(thresholds: Thresholds) -> str:
    """Every threshold as a YAML file that ``--thresholds`` reads back unchanged."""
    return dump(thresholds.model_dump(by_alias=True, mode="json"))
