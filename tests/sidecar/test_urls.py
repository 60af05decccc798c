"""Service URLs shown to people: a password is hidden wherever the URL carries it."""

from __future__ import annotations

import pytest

from sidecar.urls import hide_password, url_passwords


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:pw@db:5432/q", "postgresql://u:***@db:5432/q"),
        ("postgresql://u@db/q?password=pw", "postgresql://u@db/q?password=***"),
        (
            "postgresql://u@db/q?sslmode=require&Password=pw&x=1",
            "postgresql://u@db/q?sslmode=require&Password=***&x=1",
        ),
        ("postgresql://u@db/q?sslpassword=pw", "postgresql://u@db/q?sslpassword=***"),
        ("postgresql://u@db/q?pass%77ord=pw", "postgresql://u@db/q?pass%77ord=***"),
        ("redis://:pw@cache:6379/0?password=pw2", "redis://:***@cache:6379/0?password=***"),
        ("redis://cache:6379/0", "redis://cache:6379/0"),
        ("sqlite:///data/ledger.sqlite3", "sqlite:///data/ledger.sqlite3"),
    ],
)
def test_a_password_is_hidden_in_the_user_part_and_in_the_query(url: str, shown: str) -> None:
    assert hide_password(url) == shown


def test_the_log_redaction_learns_every_password_a_url_carries() -> None:
    found = url_passwords(
        "redis://:pw1@cache/0?password=pw2", "postgresql://u@db/q?password=p%40w3"
    )
    assert set(found) == {"pw1", "pw2", "p@w3", "p%40w3"}
