"""Service URLs shown to people: passwords hidden, and known to the log redaction."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from sidecar.settings import Settings


def hide_password(url: str) -> str:
    """``url`` with any password replaced by ``***``, for printing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    userinfo = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{userinfo}:***@{netloc[1]}"))


def url_passwords(*urls: str | None) -> tuple[str, ...]:
    """Passwords inside ``urls``, for the log redaction safety net."""
    found = []
    for url in urls:
        if url:
            password = urlsplit(url).password
            if password:
                found.append(password)
    return tuple(found)


def local_url(host: str, port: int) -> str:
    """``http://host:port`` of a listener on ``host``, as reached from this machine (an
    any-address listener through loopback)."""
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - connecting, not binding
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def metrics_url(settings: Settings) -> str:
    """Where this machine's ``GET /metrics`` is: the metrics listener when METRICS_PORT is
    set, else the receiver."""
    if settings.metrics_port != 0:
        return f"{local_url(settings.metrics_host, settings.metrics_port)}/metrics"
    return f"{local_url(settings.host, settings.port)}/metrics"
