"""`qlara-sidecar webhook show | register | revoke` against the fake Qlara over HTTP, on both
API surfaces: what is on file, the 409 path, the read-back, and the token never printed."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner

from sidecar.cli import main
from tests.fake_qlara import API_KEY, Served

TOKEN = "registered-token-0123456789abcdef"
OURS = f"https://hooks.example.com/webhook/{TOKEN}"
THEIRS = "https://someone-else.example.com/hooks/qlara-abcdef0123456789"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("QLARA_SIDECAR_"):
            monkeypatch.delenv(name)


def run(served: Served, variant: str, *args: str, answer: str | None = None, **env: str) -> Any:
    environment = {
        "QLARA_SIDECAR_QLARA_API_KEY": API_KEY,
        "QLARA_SIDECAR_QLARA_API_URL": served.api,
        "QLARA_SIDECAR_QLARA_API_VARIANT": variant,
        **{f"QLARA_SIDECAR_{k.upper()}": v for k, v in env.items()},
    }
    return CliRunner().invoke(main, ["webhook", *args], env=environment, input=answer)


@pytest.mark.parametrize("variant", ["messages", "partner-gateway"])
def test_register_shows_asks_registers_and_verifies(
    serve_fake: Callable[..., Served], variant: str
) -> None:
    served = serve_fake()
    served.fake.registration = {"id": "wh-0", "callbackUrl": THEIRS, "status": "ACTIVE"}

    # Someone else's URL is on file, and is said to be
    shown = run(served, variant, "show", webhook_public_url=OURS)
    assert shown.exit_code == 0, shown.output
    assert "NOT this sidecar's" in shown.output

    # Declining changes nothing
    declined = run(served, variant, "register", answer="n\n", webhook_public_url=OURS)
    assert declined.exit_code == 1
    assert served.fake.registration["callbackUrl"] == THEIRS

    # Accepting replaces it (the partner gateway: POST 409, then PUT) and reads it back
    done = run(served, variant, "register", "--yes", webhook_public_url=OURS)
    assert done.exit_code == 0, done.output
    assert "verified" in done.output
    assert served.fake.registration["callbackUrl"] == OURS
    calls = [(e["method"], e["status"]) for e in served.fake.log if e["status"] != 401]
    expected_write = (
        [("POST", 409), ("PUT", 200)] if variant == "partner-gateway" else [("POST", 200)]
    )
    assert calls[-len(expected_write) - 1 : -1] == expected_write
    assert calls[-1] == ("GET", 200)  # the read-back
    # The token is never printed in full
    for result in (shown, declined, done):
        assert TOKEN not in result.output

    again = run(served, variant, "show", webhook_public_url=OURS)
    assert "(this sidecar's)" in again.output


def test_revoke_on_the_partner_gateway(serve_fake: Callable[..., Served]) -> None:
    served = serve_fake()
    assert run(served, "partner-gateway", "register", "--url", OURS, "--yes").exit_code == 0
    revoked = run(served, "partner-gateway", "revoke", "--yes")
    assert revoked.exit_code == 0, revoked.output
    assert served.fake.registration is None
    assert "(none)" in run(served, "partner-gateway", "show").output


def test_refusals_are_clear(serve_fake: Callable[..., Served]) -> None:
    served = serve_fake()
    plain = run(served, "messages", "register", "--url", "http://hooks.example.com/x", "--yes")
    assert plain.exit_code == 2
    assert "https://" in plain.output
    nothing = run(served, "messages", "register", "--yes")
    assert nothing.exit_code == 2
    assert "WEBHOOK_PUBLIC_URL" in nothing.output
    no_key = CliRunner().invoke(main, ["webhook", "show"], env={})
    assert no_key.exit_code == 2
    assert "QLARA_SIDECAR_QLARA_API_KEY" in no_key.output
    assert served.fake.log == []
