"""Single sign-on to the explorer through a real OpenID Connect provider, started by the test
on loopback (``oidc-provider-mock``), the whole way a browser goes: the sign-in page, the
provider's consent, the callback, the signed-in explorer; and the accounts it refuses."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from oidc_provider_mock import User, run_server_in_thread

from dashboard.config import DashboardConfig
from ledger import Ledger, default_sqlite_url
from sidecar.dashboard_role import SECRETS_FILE
from tests.conftest import _free_port
from tests.dashboard.browser import Tab, chromium_tab, serve_explorer
from tests.sidecar.support import wait_until

USERS = [
    User(sub="ana", claims={"email": "ana@example.com", "email_verified": True}),
    User(sub="eve", claims={"email": "eve@elsewhere.org", "email_verified": True}),
    User(sub="unverified", claims={"email": "bob@example.com", "email_verified": False}),
]
CLIENT_SECRET = "explorer-client-secret-0123456789"


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    """The OpenID Connect provider's discovery URL."""
    with run_server_in_thread(user_claims=USERS) as server:
        yield f"http://127.0.0.1:{server.server_port}/.well-known/openid-configuration"


@pytest.fixture(scope="module")
def explorer(provider: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """`qlara-sidecar dashboard` with single sign-on on, admitting example.com; its base URL
    and data directory."""
    tmp_path = tmp_path_factory.mktemp("sso")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    Ledger.connect(default_sqlite_url(data_dir)).close()
    port = _free_port()
    with serve_explorer(
        data_dir,
        tmp_path / "dashboard.log",
        port,
        dashboard_oidc_metadata_url=provider,
        dashboard_oidc_client_id="qlara-explorer",
        dashboard_oidc_client_secret=CLIENT_SECRET,
        dashboard_oidc_allowed="@example.com",
        dashboard_public_url=f"http://127.0.0.1:{port}",
    ) as base:
        yield base, data_dir


@pytest.fixture
def tab() -> Iterator[Tab]:
    """A fresh headless Chromium (no cookie from an earlier sign-in)."""
    with chromium_tab() as opened:
        yield opened


def _sign_in_as(tab: Tab, explorer: str, sub: str) -> None:
    """Open the explorer, press its single sign-on button, and consent as ``sub`` at the
    provider, which sends the browser back."""
    tab.open(f"{explorer}/overview")
    assert "Sign in with single sign-on" in tab.text()
    tab.evaluate(
        "[...document.querySelectorAll('button')]"
        ".find(b => b.innerText.includes('Sign in with single sign-on')).click()"
    )
    wait_until(lambda: "Authorize" in tab.text(), "the provider's consent page", timeout=30)
    tab.evaluate(
        "(() => { const f = document.querySelector('input[name=sub]').form;"
        f" f.querySelector('input[name=sub]').value = {sub!r}; f.submit(); }})()"
    )
    wait_until(
        lambda: (
            tab.evaluate("location.host") == explorer.removeprefix("http://")
            and tab.evaluate("document.querySelector('h1') !== null")
        ),
        "the explorer again",
        timeout=30,
    )
    tab.open(f"{explorer}/overview")


def test_an_allowed_account_signs_in_and_sees_the_explorer(
    explorer: tuple[str, Path], tab: Tab
) -> None:
    base, _ = explorer
    tab.open(f"{base}/overview")
    # Nothing before signing in
    assert "Sign in with single sign-on" in tab.text()
    assert "Messages by status" not in tab.text()

    _sign_in_as(tab, base, "ana")

    assert "Messages by status" in tab.text()
    assert tab.errors() == []


@pytest.mark.parametrize("sub", ["eve", "unverified"])
def test_an_account_outside_the_allowed_list_is_refused(
    explorer: tuple[str, Path], tab: Tab, sub: str
) -> None:
    base, _ = explorer

    _sign_in_as(tab, base, sub)

    text = tab.text()
    assert "may not use this explorer" in text
    assert "Messages by status" not in text


def test_the_provider_settings_are_kept_where_only_the_sidecar_s_user_reads_them(
    explorer: tuple[str, Path],
) -> None:
    _, data_dir = explorer
    secrets = data_dir / SECRETS_FILE

    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    text = secrets.read_text()
    assert f'client_secret = "{CLIENT_SECRET}"' in text
    assert '/oauth2callback"' in text
    # and the client secret is never in the log
    log = (data_dir.parent / "dashboard.log").read_text()
    assert CLIENT_SECRET not in log


@pytest.mark.parametrize(
    ("email", "verified", "admitted"),
    [
        ("ana@example.com", True, True),
        ("Ana@Example.com", None, True),  # a provider that says nothing of verification
        ("ana@example.com", False, False),
        ("eve@elsewhere.org", True, False),
        ("boss@elsewhere.org", True, True),  # named one by one
        (None, True, False),
    ],
)
def test_the_allowed_list_takes_domains_and_addresses(
    email: str | None, verified: bool | None, admitted: bool
) -> None:
    config = DashboardConfig(
        database_url="sqlite://",
        stuck_after={},
        sso=True,
        sso_allowed=("@example.com", "boss@elsewhere.org"),
    )
    assert config.sso_admits(email, verified) is admitted
