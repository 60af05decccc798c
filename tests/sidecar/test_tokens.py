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

    # Then each is generated, long, distinct, and stored readable by the owner only
    assert tokens.generated == {"webhook", "read", "send"}
    assert tokens.webhook is not None
    assert tokens.send is not None
    values = [t.get_secret_value() for t in (tokens.webhook, tokens.read, tokens.send)]
    assert all(len(value) >= 40 for value in values)
    assert len(set(values)) == 3
    path = tokens_path(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == dict(
        zip(("webhook", "read", "send"), values, strict=True)
    )


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
    assert tokens.generated == {"read", "send"}
    assert "webhook" not in json.loads(tokens_path(tmp_path).read_text())


def test_no_webhook_token_is_generated_in_no_auth_mode(tmp_path: Path) -> None:
    settings = load_settings({"data_dir": str(tmp_path), "allow_no_auth": True})

    tokens = resolve_tokens(settings)

    assert tokens.webhook is None
    assert tokens.generated == {"read", "send"}


def test_without_generation_a_missing_token_is_an_error(tmp_path: Path) -> None:
    settings = load_settings({"data_dir": str(tmp_path)})

    with pytest.raises(TokenFileError, match="QLARA_SIDECAR_WEBHOOK_TOKEN"):
        resolve_tokens(settings, generate=False)


def test_a_token_file_from_before_sends_gains_a_send_token(tmp_path: Path) -> None:
    # Given the tokens of an earlier version, without a send token
    tokens_path(tmp_path).write_text(json.dumps({"webhook": "w" * 43, "read": "r" * 43}))
    settings = load_settings({"data_dir": str(tmp_path)})

    # A reader that does not generate gets no send token, and no error
    reading = resolve_tokens(settings, generate=False)
    assert (reading.send, reading.generated) == (None, frozenset())

    # And a start keeps them and generates only the send token
    tokens = resolve_tokens(settings)
    assert tokens.generated == {"send"}
    assert tokens.read.get_secret_value() == "r" * 43
    assert tokens.send is not None
    assert json.loads(tokens_path(tmp_path).read_text())["send"] == tokens.send.get_secret_value()
