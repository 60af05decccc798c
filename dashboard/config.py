"""The explorer's configuration, handed over by whoever starts it.

The explorer runs inside the process that starts Streamlit (``qlara-sidecar dashboard``),
which builds a :class:`DashboardConfig` from its settings and calls :func:`configure`
before the first page runs. Nothing here reads the environment.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

#: The Streamlit entry script.
APP_PATH = Path(__file__).resolve().parent / "app.py"

#: Sends up to N dead letters (oldest first) back for another try; returns how many were
#: redriven and how many still wait.
Redrive = Callable[[int], tuple[int, int]]


@dataclass(frozen=True)
class DashboardConfig:
    """Everything the explorer needs.

    - ``database_url``: the ledger, read only;
    - ``stuck_after``: how long a message of each channel (every one of
      :data:`dashboard.view.CHANNELS`) may stay sent without a final status;
    - ``gap_threshold``: a silence longer than this is highlighted on webhook health;
    - ``password`` and ``users``: when a password is set, a viewer signs in with a user
      name (one of ``users``, or any when empty) and that password;
    - ``metrics_url``/``metrics_token``: where the sidecar's ``GET /metrics`` answers, for
      the acknowledgement time, rejections, spool and queue (``None``: not shown);
      ``metrics_verify``: whether its HTTPS certificate is checked;
    - ``sso``: single sign-on through the OpenID Connect provider Streamlit is configured
      with (``st.login``); ``sso_allowed``: the e-mail addresses and ``@domains`` it admits
      (empty: anyone the provider signs in);
    - ``redrive``: the operator's redrive action (``None``: not offered);
    - ``clock``: the current time, timezone-aware.
    """

    database_url: str
    stuck_after: Mapping[str, timedelta]
    gap_threshold: timedelta = timedelta(minutes=5)
    password: str | None = field(default=None, repr=False)
    users: tuple[str, ...] = ()
    metrics_url: str | None = None
    metrics_token: str | None = field(default=None, repr=False)
    metrics_verify: bool = True
    redrive: Redrive | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    sso: bool = False
    sso_allowed: tuple[str, ...] = ()

    @property
    def signs_in(self) -> bool:
        """Whether a viewer must sign in at all."""
        return self.password is not None or self.sso

    def sso_admits(self, email: str | None, verified: bool | None) -> bool:
        """Whether a viewer the provider signed in as ``email`` may see the explorer: a
        verified address (a provider that says nothing of it is believed), one of
        ``sso_allowed`` or of a domain there, case aside; anyone when it is empty."""
        if not self.sso_allowed:
            return True
        if not email or verified is False:
            return False
        address = email.strip().lower()
        domain = "@" + address.rpartition("@")[2]
        return address in self.sso_allowed or domain in self.sso_allowed

    def admits(self, user: str, password: str) -> bool:
        """Whether ``user`` may sign in with ``password`` (always, when no password is set)."""
        if self.password is None:
            return True
        right = hmac.compare_digest(password.encode(), self.password.encode())
        return right and bool(user.strip()) and (not self.users or user.strip() in self.users)


class NotConfigured(RuntimeError):
    """The explorer was started without a configuration (not through the sidecar)."""


_current: DashboardConfig | None = None


def configure(config: DashboardConfig) -> None:
    """Set the configuration every page of this process uses."""
    global _current
    _current = config


def current() -> DashboardConfig:
    """The configuration set by :func:`configure`. Raises :class:`NotConfigured`."""
    if _current is None:
        raise NotConfigured("start the explorer with `qlara-sidecar dashboard`")
    return _current
