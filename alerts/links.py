"""The links an alert carries: its runbook, and the explorer view it opens.

The explorer reads exactly this (a contract): ``{base}/{page}?channel={channel}&window={window}``
where ``page`` is one of :data:`PAGES`, ``window`` a Prometheus duration (``5m``, ``1h``, ``1d``
...) and ``channel`` one of the ``channel`` label's values, left out when the alert has no
``channel`` label (the explorer then shows every channel).
"""

from __future__ import annotations

from typing import Literal, get_args

from qlara.durations import prometheus_seconds as seconds

Page = Literal[
    "overview", "messages", "message_detail", "webhook_health", "failures", "stuck_messages"
]
#: The explorer's pages, by their URL path.
PAGES: tuple[Page, ...] = get_args(Page)

#: Prometheus's template of the alert's channel label, kept as is in the annotation.
CHANNEL_TEMPLATE = "{{ $labels.channel }}"


def dashboard_url(base: str, page: Page, window: str, *, by_channel: bool) -> str:
    """The explorer view of an alert: ``page`` over the last ``window``, filtered to the
    alert's channel (a template Prometheus fills in) when ``by_channel``.

    Raises ``ValueError`` for a page the explorer does not have or an invalid window.
    """
    if page not in PAGES:
        raise ValueError(f"{page!r} is not an explorer page; expected one of {', '.join(PAGES)}")
    seconds(window)
    query = f"channel={CHANNEL_TEMPLATE}&window={window}" if by_channel else f"window={window}"
    return f"{base.rstrip('/')}/{page}?{query}"


def runbook_url(base: str, alert: str) -> str:
    """Where the runbook of ``alert`` is read: ``{base}/{alert}.md``."""
    return f"{base.rstrip('/')}/{alert}.md"
