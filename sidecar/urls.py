"""Service URLs shown to people: passwords hidden, and known to the log redaction."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


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
