"""Hostile JSON through the real receiver, then real workers, on both ledgers: no answer of
500 or more, and the ledger holds exactly the events the receiver accepted.

The bodies come from a generator of what a broken or malicious sender may post: nesting
at every depth, text with every control character and in other encodings, numbers at every
boundary, truncations, byte order marks, arrays mixing good and bad items, random bytes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from ledger import Ledger
from qlara import Receipt
from receiver import ReceiverConfig
from tests.receiver.conftest import TOKEN, QueueReader
from workers import QUEUE_NAME

pytestmark = [pytest.mark.redis, pytest.mark.e2e]

URL = f"/webhook/{TOKEN}"
BATCH = 40

text = st.text(st.characters(codec="utf-8"), max_size=24)
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, -1, 2**31, 2**63, 10**400, -(10**400), 1e308, 5e-324]),
)
json_values = st.recursive(
    st.none() | st.booleans() | numbers | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=12,
)
timestamps = st.one_of(
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    numbers,
    text,
    st.none(),
    st.sampled_from(["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00", "2025-02-30"]),
)
items = st.fixed_dictionaries(
    {
        "messageId": st.one_of(text, st.just("m-1"), st.sampled_from(["a/b", "x" * 300])),
        "timestamp": timestamps,
    },
    optional={
        "status": st.one_of(st.sampled_from(["DELIVERED", "SENT", "ERROR", "EXPIRED"]), text),
        "eventType": st.sampled_from(["DELIVERY", "READ", "INBOUND", "OTHER"]),
        "statusCode": st.one_of(st.sampled_from([3, 6]), numbers, text),
        "numPart": st.one_of(st.integers(-3, 5), numbers),
        "totalParts": st.one_of(st.integers(-3, 5), numbers),
        "price": st.one_of(numbers, text),
        "channel": st.one_of(st.sampled_from(["sms", "RCS", "WhatsApp"]), text, numbers),
        "error": json_values,
        "phoneNumber": st.one_of(text, st.just("+393901234567")),
        "extra": json_values,
    },
)


def _encode(value: Any, ascii_only: bool) -> bytes:
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


bodies = st.one_of(
    st.builds(_encode, items, st.booleans()),
    st.builds(
        _encode, st.lists(st.one_of(items, json_values), min_size=1, max_size=5), st.booleans()
    ),
    st.integers(min_value=1, max_value=3000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(min_value=1, max_value=3000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
    st.builds(lambda b: b"\xef\xbb\xbf" + b, st.builds(_encode, items, st.just(False))),
    st.builds(lambda b, cut: b[:cut], st.builds(_encode, items, st.just(True)), st.integers(0, 60)),
    st.builds(
        lambda b, junk: b.replace(b'"', b'"' + junk, 1) if b.count(b'"') > 2 else b,
        st.builds(_encode, items, st.just(False)),
        st.binary(min_size=1, max_size=4).map(lambda x: bytes(c | 0x80 for c in x)),
    ),
    st.binary(max_size=200),
)


@pytest.fixture
def client(config: ReceiverConfig, make_client: Callable[..., TestClient[Any]]) -> TestClient[Any]:
    return make_client(config)


def _events(receipts: list[Receipt]) -> set[tuple[str, str, object, int]]:
    return {(e.message_id, e.status, e.event_time, e.part) for r in receipts for e in r.events}


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large],
)  # fmt: skip
@given(batch=st.lists(bodies, min_size=BATCH, max_size=BATCH))
def test_hostile_bodies_get_no_5xx_and_the_ledger_holds_exactly_what_was_accepted(
    client: TestClient[Any], drain: Any, backend: str, namespace: str, redis_url: str,
    batch: list[bytes],
) -> None:  # fmt: skip
    queue = QueueReader(redis_url, namespace, QUEUE_NAME)
    statuses = [
        client.post(URL, content=body, headers={"content-type": "application/json"}).status_code
        for body in batch
    ]
    accepted = _events(queue.receipts())  # what the receiver queued for this batch
    drain()

    assert all(status in (200, 400) for status in statuses), statuses
    ledger = Ledger.connect(backend, migrate=False)
    try:
        recorded = {
            (m.message_id, e.status, e.event_time, e.part)
            for message_id in {key[0] for key in accepted}
            if (m := ledger.get_message(message_id)) is not None
            for e in m.events
        }
    finally:
        ledger.close()
    assert accepted <= recorded
    assert ledger_total(backend) == len(_all_accepted(namespace, accepted))


_SEEN: dict[str, set[tuple[str, str, object, int]]] = {}


def _all_accepted(namespace: str, batch: set[tuple[str, str, object, int]]) -> set[Any]:
    """Every event accepted so far in this test (hypothesis runs several batches on one
    ledger, one namespace per test)."""
    seen = _SEEN.setdefault(namespace, set())
    seen |= batch
    return seen


def ledger_total(backend: str) -> int:
    ledger = Ledger.connect(backend, migrate=False)
    try:
        return ledger.counts().events
    finally:
        ledger.close()
