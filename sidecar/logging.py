"""One explicit :func:`configure` for structlog and the standard library's logging.

Every log line of the process, ours (``structlog.get_logger()``) and the libraries' (uvicorn,
dramatiq, alembic, litestar through the stdlib), goes through one handler on stderr that
renders JSON lines or, on a terminal, readable console output.

Before rendering, every event passes :class:`Redact`, a safety net that masks anything that
looks like a phone number (with :func:`qlara.mask_phone`) and replaces the known secrets with
``[REDACTED]``. Code still must not log them; this catches what slips through, such as a
library logging a request path that carries the webhook token.

Child processes inherit the level and format through ``QLARA_SIDECAR_LOG_LEVEL`` and
``QLARA_SIDECAR_LOG_FORMAT`` and call :func:`configure` themselves.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, Literal

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from qlara import mask_phone

REDACTED = "[REDACTED]"

# A "+" then 8-15 digits, or a bare run of 9-15 digits, standing alone (not inside a word,
# a longer number, a decimal or a UUID-like identifier): what E.164 numbers look like in text.
_PHONE = re.compile(r"(?<![\w+.:-])(?:\+\d{8,15}|\d{9,15})(?![\w.:-])")
# Libraries that are chatty at INFO with nothing an operator needs.
#: Libraries whose info lines only repeat what the sidecar says itself (alembic's plugin
#: set-up and upgrade steps, once per process: the ledger logs one line per migration).
_QUIET = {"httpx": logging.WARNING, "httpcore": logging.WARNING, "alembic": logging.WARNING}


def resolve_format(fmt: str) -> Literal["json", "console"]:
    """``auto`` becomes ``json`` when stderr is not a terminal, else ``console``."""
    if fmt == "json":
        return "json"
    if fmt == "console":
        return "console"
    if fmt != "auto":
        raise ValueError(f"log format must be auto, json or console, got {fmt!r}")
    return "console" if sys.stderr.isatty() else "json"


class Redact:
    """Processor masking phone-like digit runs and known secrets in every string of an event.

    Secrets shorter than 8 characters are ignored: replacing them would mangle ordinary words.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = sorted({s for s in secrets if len(s) >= 8}, key=len, reverse=True)

    def __call__(self, logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
        for key, value in list(event_dict.items()):
            event_dict[key] = self._clean(value)
        return event_dict

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, MutableMapping):
            return {k: self._clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self._clean(v) for v in value)
        return value

    def text(self, value: str) -> str:
        """``value`` with secrets and phone numbers masked."""
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return _PHONE.sub(lambda m: mask_phone(m.group(0)) or "", value)


def _stringify_message(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    # Foreign (stdlib) records may carry a non-string message object; render it first so
    # the redaction sees the final text.
    event = event_dict.get("event")
    if event is not None and not isinstance(event, str):
        event_dict["event"] = str(event)
    return event_dict


def _drop_color_message(
    logger: object, method: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    event.pop("color_message", None)
    return event


def configure(
    level: str = "info",
    fmt: str = "auto",
    secrets: Iterable[str] = (),
) -> None:
    """Configure structlog and the stdlib root logger for the whole process.

    ``level`` is a level name (``debug`` ... ``error``); ``fmt`` is ``auto``, ``json`` or
    ``console``; ``secrets`` are values that must never appear in a log line. Calling it
    again replaces the previous configuration (the handler is not duplicated).
    """
    numeric = logging.getLevelNamesMapping()[level.upper()]
    rendered = resolve_format(fmt)
    redact = Redact(secrets)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Processor
    if rendered == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())

    formatter = structlog.stdlib.ProcessorFormatter(
        # uvicorn adds a "color_message" extra: terminal escapes that only add noise here.
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder(), _drop_color_message],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _stringify_message,
            # Tracebacks become text before redaction, so a secret in one is masked too.
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.set_name("qlara-sidecar")

    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(numeric)
    for name, quiet in _QUIET.items():
        logging.getLogger(name).setLevel(max(quiet, numeric))
    # uvicorn and others attach their own handlers when left alone; route them to the root.
    for name in ("uvicorn", "uvicorn.error", "dramatiq", "alembic"):
        library = logging.getLogger(name)
        library.handlers.clear()
        library.propagate = True
    # The access log would print every webhook path, and the path carries the token. uvicorn
    # writes it whenever the logger has a handler anywhere up its chain, so cut the chain.
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    logging.captureWarnings(True)


__all__ = ["REDACTED", "Redact", "configure", "resolve_format"]
