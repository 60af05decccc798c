"""Describing the settings to people: `qlara-sidecar config` and the README's table.

Both are generated from the field descriptions in :mod:`sidecar.settings`, so the help, the
command and the documentation cannot drift apart.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic_core import PydanticUndefined

from sidecar.settings import (
    SECRET_FIELDS,
    Settings,
    env_name,
    flag_name,
    format_value,
)
from sidecar.tokens import TokenFileError, read_stored
from sidecar.urls import hide_password

MASK = "********"
_TOKEN_NAMES = {"webhook_token": "webhook", "read_token": "read", "send_token": "send"}


def default_text(field: str) -> str:
    """The default of ``field`` as written in the environment (``unset`` for none)."""
    info = Settings.model_fields[field]
    if info.default is PydanticUndefined or info.default is None:
        return "unset"
    if isinstance(info.default, Path) and not info.default.is_absolute():
        return f"./{info.default}"
    return format_value(info.default) or '""'


def _current(settings: Settings, field: str, stored: Mapping[str, str]) -> str:
    value = getattr(settings, field)
    if field in _TOKEN_NAMES:
        if value is not None:
            return MASK
        if _TOKEN_NAMES[field] in stored:
            return f"{MASK} (generated, in tokens.json)"
        return "unset (generated at first start)"
    if field in SECRET_FIELDS:
        return MASK if value is not None else "unset"
    if value is None:
        return "unset"
    text = format_value(value)
    if field in ("redis_url", "database_url"):
        text = hide_password(text)
    return text or '""'


def _source(field: str, flags: Mapping[str, Any]) -> str:
    if flags.get(field) is not None:
        return "flag"
    if any(key.upper() == env_name(field) for key in os.environ):
        return "env"
    return "default"


def settings_report(settings: Settings, flags: Mapping[str, Any]) -> str:
    """Every setting: variable = current value (source), flag, default and description."""
    try:
        stored = read_stored(settings.data_dir)
    except TokenFileError:
        stored = {}
    blocks = []
    for field, info in Settings.model_fields.items():
        flag = "env only (secret)" if field in SECRET_FIELDS else flag_name(field)
        blocks.append(
            f"{env_name(field)} = {_current(settings, field, stored)}   ({_source(field, flags)})\n"
            f"    flag: {flag}   default: {default_text(field)}\n"
            f"    {info.description}"
        )
    return "\n".join(blocks)


def markdown_table() -> str:
    """The settings reference as a Markdown table (variable, flag, default, description)."""
    rows = [
        "| Variable | Flag | Default | Description |",
        "|---|---|---|---|",
    ]
    for field, info in Settings.model_fields.items():
        flag = "(environment only)" if field in SECRET_FIELDS else f"`{flag_name(field)}`"
        description = (info.description or "").replace("|", "\\|")
        rows.append(f"| `{env_name(field)}` | {flag} | `{default_text(field)}` | {description} |")
    return "\n".join(rows)
