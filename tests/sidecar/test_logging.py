"""Logging: JSON lines off a terminal, and no phone number or secret in any line."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from sidecar.logging import REDACTED, Redact, configure, resolve_format

SECRET = "s3cret-webhook-token-abcdefgh"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put the process's logging back as it was: configure() is process-wide."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.usefixtures("restore_logging")
def test_structlog_events_are_json_lines_with_phone_numbers_masked_and_secrets_redacted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure("info", "json", secrets=[SECRET])

    structlog.get_logger("test").info(
        "event received", phone="+393901234567", path=f"/webhook/{SECRET}"
    )

    (line,) = json_lines(capsys.readouterr().err)
    assert line["event"] == "event received"
    assert line["phone"] == "+39******4567"
    assert line["path"] == f"/webhook/{REDACTED}"
    assert line["level"] == "info"


@pytest.mark.usefixtures("restore_logging")
def test_library_log_records_go_through_the_same_safety_net(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure("info", "json", secrets=[SECRET])

    logging.getLogger("uvicorn.error").warning(
        "bad request on %s from 00393901234567", f"/webhook/{SECRET}"
    )

    (line,) = json_lines(capsys.readouterr().err)
    assert line["event"] == f"bad request on /webhook/{REDACTED} from +39******4567"
    assert line["logger"] == "uvicorn.error"


@pytest.mark.usefixtures("restore_logging")
def test_events_below_the_level_are_dropped(capsys: pytest.CaptureFixture[str]) -> None:
    configure("warning", "json")

    structlog.get_logger("test").info("chatter")
    logging.getLogger("dramatiq").info("more chatter")

    assert capsys.readouterr().err == ""


def test_identifiers_and_timestamps_are_not_mistaken_for_phone_numbers() -> None:
    redact = Redact()

    assert redact.text("message 123e4567-e89b-12d3-a456-426614174000") == (
        "message 123e4567-e89b-12d3-a456-426614174000"
    )
    assert redact.text("at 2025-04-08T14:30:00Z took 0.123456789 s") == (
        "at 2025-04-08T14:30:00Z took 0.123456789 s"
    )
    assert redact.text("to 3901234567") == "to ******4567"


def test_auto_format_is_json_when_stderr_is_not_a_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # capsys replaces stderr with something that is not a terminal
    assert resolve_format("auto") == "json"
    assert resolve_format("console") == "console"


def test_uvicorn_colour_codes_do_not_reach_the_log_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure(level="info", fmt="json")
    # uvicorn's own loggers may have been reconfigured by an in-process server in another
    # test; any stdlib logger passing the same extra shows the behaviour.
    logging.getLogger("tests.uvicorn_like").info(
        "Started server process [%d]", 42, extra={"color_message": "\x1b[36m%d\x1b[0m"}
    )
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "color_message" not in line
    assert "Started server process [42]" in line


@pytest.mark.usefixtures("restore_logging")
def test_alembics_own_info_lines_are_kept_out(capsys: pytest.CaptureFixture[str]) -> None:
    configure("info", "json", ())

    logging.getLogger("alembic.runtime.plugins").info("setup plugin %s", "x")
    logging.getLogger("alembic.runtime.migration").info("Running upgrade 0002 -> 0003")
    logging.getLogger("alembic.runtime.migration").warning("a real problem")

    lines = [json.loads(line)["event"] for line in capsys.readouterr().err.splitlines()]
    assert lines == ["a real problem"]
