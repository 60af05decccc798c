"""The delivery explorer: a Streamlit app over the ledger, for support staff and SREs.

The pages (``app.py`` and ``views/``) show what plain, tested query functions
(:mod:`dashboard.queries`) read from the ledger. The process that starts Streamlit hands
over a :class:`DashboardConfig` with :func:`configure` first.
"""

from dashboard.config import APP_PATH, DashboardConfig, NotConfigured, Redrive, configure
from dashboard.view import CHANNELS
from qlara.durations import format_duration, parse_duration

__all__ = [
    "APP_PATH",
    "CHANNELS",
    "DashboardConfig",
    "NotConfigured",
    "Redrive",
    "configure",
    "format_duration",
    "parse_duration",
]
