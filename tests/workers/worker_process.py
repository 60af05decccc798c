"""Runs ``workers.run_worker`` with a JSON-encoded WorkerConfig (argv[1]) and exits with its
code: the child process of the subprocess tests."""

from __future__ import annotations

import json
import logging
import sys

from workers import WorkerConfig, run_worker


def main() -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    return run_worker(WorkerConfig(**json.loads(sys.argv[1])))


if __name__ == "__main__":
    sys.exit(main())
