"""Tokens: generated once, stored privately, reused; a set token is never overwritten."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from sidecar.settings import load_settings
from sidecar.tokens import TokenFileError, resolve_tokens, tokens_path


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("QLARA_SIDECAR_"):
            monkeypatch.delenv(name)


def test_unset_tokens_are_generated_and_stored_with_mode_0600(tmp_path: Path) -> None:
    # Given a fresh data directory and no token in the settings
    settings = load_settings({"data_dir": str(tmp_path)})

    # When the tokens are resolved
    tokens = resolve_tokens(settings)

    # Then both are generated, long, and stored readable by the owner only
    assert tokens.generated == {"webhook", "read"}
    assert tokens.webhook is not None
    assert len(tokens.webhook.get_secret_value()) >= 40
    assert tokens.webhook.get_secret_value() != tokens.read.get_secret_value()
    path = tokens_path(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {
        "webhook": tokens.webhook.get_secret_value(),
        "read": tokens.read.get_secret_value(),
    }


def test_a_later_start_reuses_the_stored_tokens_and_generates_nothing(tmp_path: Path) -> None:
    settings = load_settings({"data_dir": str(tmp_path)})
    first = resolve_tokens(settings)

    second = resolve_tokens(settings)

    assert second.generated == frozenset()
    assert second.webhook == first.webhook
    assert second.read == first.read


def test_a_token_from_the_environment_wins_and_is_not_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QLARA_SIDECAR_WEBHOOK_TOKEN", "operator-chosen-webhook-token")
    settings = load_settings({"data_dir": str(tmp_path)})

    tokens = resolve_tokens(settings)

    assert tokens.webhook is not None
    assert tokens.webhook.get_secret_value() == "operator-chosen-webhook-token"
    assert tokens.generated == {"read"}
    assert "webhook" not in json.loads(tokens_path(tmp_path).read_text())


def test_no_webhook_token_is_generated_in_no_auth_mode(tmp_path: Path) -> None:
    settings = load_settings({"data_dir": str(tmp_path), "allow_no_auth": True})

    tokens = resolve_tokens(settings)

    assert tokens.webhook is None
    assert tokens.generated == {"read"}


def test_without_generation_a_missing_token_is_an_error(tmp_path: Path) -> None:
    settings = load_settings({"data_dir": str(tmp_path)})

    with pytest.raises(TokenFileError, match="QLARA_SIDECAR_WEBHOOK_TOKEN"):
        resolve_tokens(settings, generate=False)
