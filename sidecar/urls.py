"""Service URLs shown to people: passwords hidden, and known to the log redaction."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import unquote_plus, urlsplit, urlunsplit

if TYPE_CHECKING:
    from sidecar.settings import Settings


def hide_password(url: str) -> str:
    """``url`` with any password replaced by ``***``, for printing: the one in the user
    part, and any query parameter named like a password (libpq and redis-py both read
    ``?password=``)."""
    parts = urlsplit(url)
    if not url_passwords(url):
        return url  # as given: urlunsplit would rewrite sqlite:///path as sqlite:/path
    if parts.password is not None:
        user, host = parts.netloc.rsplit("@", 1)
        parts = parts._replace(netloc=f"{user.split(':', 1)[0]}:***@{host}")
    if parts.query:
        pairs = [
            f"{name}=***" if _is_password(name) else f"{name}={value}" if sep else name
            for name, sep, value in _query_pairs(parts.query)
        ]
        parts = parts._replace(query="&".join(pairs))
    return urlunsplit(parts)


def url_passwords(*urls: str | None) -> tuple[str, ...]:
    """Passwords inside ``urls``, as written and as decoded, for the log redaction safety
    net."""
    found: list[str] = []
    for url in urls:
        if not url:
            continue
        parts = urlsplit(url)
        given = [parts.password] if parts.password else []
        given += [
            value for name, _, value in _query_pairs(parts.query) if value and _is_password(name)
        ]
        for value in given:
            found += {value, unquote_plus(value)}
    return tuple(found)


def _query_pairs(query: str) -> list[tuple[str, str, str]]:
    """A URL's query as written: (name, "=" or "", value) for each ``&``-separated pair."""
    return [pair.partition("=") for pair in query.split("&")]


def _is_password(name: str) -> bool:
    return unquote_plus(name).lower().endswith("password")


def local_url(host: str, port: int, *, tls: bool = False) -> str:
    """``http://host:port`` (``https`` with ``tls``) of a listener on ``host``, as reached
    from this machine (an any-address listener through loopback)."""
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - connecting, not binding
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"{'https' if tls else 'http'}://{host}:{port}"


def receiver_url(settings: Settings) -> str:
    """The receiver's base URL as reached from this machine: HTTPS when it serves TLS."""
    return local_url(settings.host, settings.port, tls=settings.tls_cert_file is not None)


#: Whether a call from this machine to its own receiver checks the receiver's certificate.
#: It does not: the certificate names the public host, not the loopback address the call
#: goes to, and nothing stands between the two processes. Calls to other hosts check it.
VERIFY_OWN_RECEIVER = False


def metrics_url(settings: Settings) -> str:
    """Where this machine's ``GET /metrics`` is: the metrics listener when METRICS_PORT is
    set, else the receiver."""
    if settings.metrics_port != 0:
        return f"{local_url(settings.metrics_host, settings.metrics_port)}/metrics"
    return f"{receiver_url(settings)}/metrics"
