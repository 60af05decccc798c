"""Runs ``workers.run_worker`` with a JSON-encoded WorkerConfig (argv[1]) and exits with its
code: the child process of the subprocess tests. With ``QLARA_TEST_DIE_AFTER_COMMIT`` set it
SIGKILLs itself as soon as its first ledger transaction has committed (the moment a worker
that counted after its commit would lose the count)."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from ledger import Ledger, RecordResult
from qlara import Receipt
from tests.workers.support import DIE_AFTER_COMMIT_ENV
from workers import WorkerConfig, run_worker


def die_after_commit() -> None:
    record_many = Ledger.record_many

    def record_then_die(self: Ledger, batch: Sequence[Receipt], **kw: Any) -> list[RecordResult]:
        results = record_many(self, batch, **kw)  # committed when it returns
        os.kill(os.getpid(), signal.SIGKILL)
        return results

    Ledger.record_many = record_then_die  # type: ignore[method-assign]


def main() -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    if os.environ.get(DIE_AFTER_COMMIT_ENV):
        die_after_commit()
    return run_worker(WorkerConfig(**json.loads(sys.argv[1])))


if __name__ == "__main__":
    sys.exit(main())
