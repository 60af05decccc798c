"""The reject log: every refused webhook body, kept with the reason it was refused.

Qlara may not resend what was refused, so a body the receiver could not use is kept for
inspection. The log is JSON lines under ``data_dir/rejects``::

    {"time": "2025-01-01T12:00:00.000000+00:00", "reason": "...", "status": 400,
     "field": "timestamp", "rejected": [...], "size": 123,
     "body": "<text>" | "<base64>", "encoding": "utf-8" | "base64" | null}

``rejected`` lists the refused items of an array (absent otherwise); ``noted`` the
implausible values kept in an accepted body (``{"index","field","problem"}``, absent
otherwise: such a body is recorded with status 200, as a note); ``body`` is ``null``
when it was never read (413). Bounded: ``rejects.jsonl`` is moved to ``rejects.1.jsonl``
(replacing it) before a write would take it past half of ``max_bytes``, so the two files
together stay under ``max_bytes``; a body too large for that is cut and marked
``"truncated": true``. Several processes share the files: each write holds an ``flock`` on
``rejects.lock`` and appends with ``O_APPEND``. Writes block on disk: call them off the
event loop.
"""

from __future__ import annotations

import base64
import fcntl
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

CURRENT = "rejects.jsonl"
PREVIOUS = "rejects.1.jsonl"
_LOCK = "rejects.lock"
_ENCODE = msgspec.json.encode
#: Refused array items kept per record; the count of all is kept beside them.
_MAX_ITEMS = 100


class RejectLog:
    """Appends reject records under ``directory``, keeping the total under ``max_bytes``."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self._half = max_bytes // 2
        self._thread_lock = threading.Lock()

    def write(
        self,
        *,
        reason: str,
        status: int,
        field: str | None = None,
        body: bytes | None = None,
        rejected: list[dict[str, Any]] | None = None,
        noted: list[dict[str, Any]] | None = None,
    ) -> None:
        """Append one record. Raises ``OSError`` when the directory cannot be written."""
        line = self._record(reason, status, field, body, rejected, noted)
        with self._thread_lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            lock_fd = os.open(
                self.directory / _LOCK, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600
            )
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX)
                current = self.directory / CURRENT
                try:
                    size = current.stat().st_size
                except FileNotFoundError:
                    size = 0
                if size and size + len(line) > self._half:
                    os.replace(current, self.directory / PREVIOUS)
                fd = os.open(current, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
                try:
                    os.write(fd, line)
                finally:
                    os.close(fd)
            finally:
                os.close(lock_fd)

    def _record(
        self,
        reason: str,
        status: int,
        field: str | None,
        body: bytes | None,
        rejected: list[dict[str, Any]] | None,
        noted: list[dict[str, Any]] | None = None,
    ) -> bytes:
        record: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(),
            "reason": reason,
            "status": status,
            "field": field,
        }
        if rejected is not None:
            record["rejected"] = rejected[:_MAX_ITEMS]
            if len(rejected) > _MAX_ITEMS:
                record["rejected_total"] = len(rejected)
        if noted is not None:
            record["noted"] = noted[:_MAX_ITEMS]
            if len(noted) > _MAX_ITEMS:
                record["noted_total"] = len(noted)
        record["size"] = None if body is None else len(body)
        line = self._with_body(record, body)
        if len(line) > self._half and body is not None:
            # Cut the body so one record always fits in the budget.
            record["truncated"] = True
            room = len(body)
            while len(line) > self._half and room:
                room //= 2
                line = self._with_body(record, body[:room])
        return line

    @staticmethod
    def _with_body(record: dict[str, Any], body: bytes | None) -> bytes:
        if body is None:
            record["body"], record["encoding"] = None, None
        else:
            try:
                record["body"], record["encoding"] = body.decode("utf-8"), "utf-8"
            except UnicodeDecodeError:
                record["body"] = base64.b64encode(body).decode("ascii")
                record["encoding"] = "base64"
        return _ENCODE(record) + b"\n"
