"""``python -m metrics.grafana [--check]``: write the dashboard file from
:func:`metrics.grafana.dashboard`, or with ``--check`` only say whether it differs (exit 1)."""

from __future__ import annotations

import sys

from metrics.grafana.dashboard import DASHBOARD_FILE, render


def main(argv: list[str]) -> int:
    """Write (or check) the dashboard file; the exit status."""
    text = render()
    if "--check" in argv:
        if DASHBOARD_FILE.read_text() != text:
            print(f"{DASHBOARD_FILE} differs from metrics/grafana/dashboard.py", file=sys.stderr)
            return 1
        return 0
    DASHBOARD_FILE.write_text(text)
    print(f"wrote {DASHBOARD_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
