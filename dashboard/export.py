"""The filtered set of messages as CSV, phone numbers masked (in error texts too)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import datetime

from ledger import MessageSummary
from qlara import mask_phone, mask_phones

#: The most rows one export holds.
EXPORT_LIMIT = 100_000

COLUMNS: tuple[str, ...] = (
    "message_id",
    "customer_message_id",
    "channel",
    "phone",
    "status",
    "is_final",
    "sent_at",
    "final_at",
    "read_at",
    "latency_seconds",
    "error",
    "event_count",
    "duplicate_count",
    "updated_at",
)


def messages_csv(items: Iterable[MessageSummary]) -> str:
    """One header row, then a row per message; times ISO 8601 UTC, phones masked."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for item in items:
        row = []
        for name in COLUMNS:
            value = getattr(item, name)
            if name == "phone":
                value = mask_phone(value)
            elif name == "error":
                value = mask_phones(value)
            elif isinstance(value, datetime):
                value = value.isoformat()
            row.append("" if value is None else value)
        writer.writerow(row)
    return out.getvalue()
