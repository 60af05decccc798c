"""The reject log keeps refused bodies with their reason, within its size budget."""

from __future__ import annotations

import base64
import json
import multiprocessing
from pathlib import Path

from receiver.rejects import CURRENT, PREVIOUS, RejectLog


def records(directory: Path) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for name in (PREVIOUS, CURRENT):
        path = directory / name
        if path.exists():
            out += [json.loads(line) for line in path.read_bytes().splitlines()]
    return out


def total_size(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.glob("rejects*.jsonl"))


def test_a_record_keeps_reason_status_field_and_body(tmp_path: Path) -> None:
    log = RejectLog(tmp_path, 1 << 20)

    log.write(reason="missing field `status`", status=400, field="status", body=b'{"a":1}')

    [record] = records(tmp_path)
    assert record["reason"] == "missing field `status`"
    assert (record["status"], record["field"]) == (400, "status")
    assert (record["body"], record["encoding"], record["size"]) == ('{"a":1}', "utf-8", 7)
    assert isinstance(record["time"], str)


def test_a_body_that_is_not_text_is_kept_as_base64(tmp_path: Path) -> None:
    log = RejectLog(tmp_path, 1 << 20)

    log.write(reason="malformed JSON", status=400, body=b"\xff\x00\xfe")

    [record] = records(tmp_path)
    assert record["encoding"] == "base64"
    assert base64.b64decode(str(record["body"])) == b"\xff\x00\xfe"


def test_the_log_rotates_so_its_total_stays_under_the_budget(tmp_path: Path) -> None:
    budget = 8192
    log = RejectLog(tmp_path, budget)

    for n in range(500):
        log.write(reason=f"refusal {n}", status=400, body=b"x" * (n % 300))

    assert total_size(tmp_path) <= budget
    kept = records(tmp_path)
    assert kept[-1]["reason"] == "refusal 499"
    reasons = [r["reason"] for r in kept]
    assert reasons == sorted(reasons, key=lambda r: int(str(r).split()[1]))


def test_a_body_larger_than_the_budget_is_cut_and_marked(tmp_path: Path) -> None:
    log = RejectLog(tmp_path, 4096)

    log.write(reason="too big", status=415, body=b'"' * 10_000)

    [record] = records(tmp_path)
    assert record["truncated"] is True
    assert record["size"] == 10_000
    assert total_size(tmp_path) <= 4096


def _write_many(directory: str, worker: int) -> None:
    log = RejectLog(Path(directory), 64 * 1024)
    for n in range(200):
        log.write(reason=f"w{worker}-{n}", status=400, body=b"y" * 50)


def test_several_processes_write_whole_lines_within_the_budget(tmp_path: Path) -> None:
    # fork: the children only append to files, and spawning would re-import the app.
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_write_many, args=(str(tmp_path), w)) for w in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)

    assert [p.exitcode for p in processes] == [0, 0, 0, 0]
    assert total_size(tmp_path) <= 64 * 1024
    kept = records(tmp_path)  # every line parses: none was interleaved
    assert {str(r["reason"]).split("-")[0] for r in kept} <= {"w0", "w1", "w2", "w3"}
