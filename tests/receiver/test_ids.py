"""Receipt ids: the shape of uuid4().hex, never repeated, ordered within a process, and
distinct between processes (spawned or forked)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from receiver.ids import next_receipt_id

PRINT_ONE = "from receiver.ids import next_receipt_id; print(next_receipt_id())"


def test_ids_are_32_hex_digits_unique_and_in_order() -> None:
    ids = [next_receipt_id() for _ in range(10_000)]

    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)


def test_two_processes_draw_different_prefixes() -> None:
    first, second = (
        subprocess.run(
            [sys.executable, "-c", PRINT_ONE], capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(2)
    )

    assert first[:16] != second[:16]


def test_a_forked_child_does_not_continue_its_parents_sequence() -> None:
    parent_next = next_receipt_id()
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        os.write(write, next_receipt_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    child_id = os.read(read, 64).decode()
    os.close(read)

    assert child_id[:16] != parent_next[:16]
