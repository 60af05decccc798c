"""Standard Webhooks verification: signed requests pass, anything else is a 401, and a copy of
a request already taken is answered without being queued again."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar.testing import TestClient
from standardwebhooks.webhooks import Webhook

from receiver import ReceiverConfig
from receiver.signatures import SignatureCheck
from tests.receiver.conftest import TOKEN, QueueReader, event_json, reject_records

OLD = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NEW = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
URL = f"/webhook/{TOKEN}"


def signed(
    body: bytes, secret: str = NEW, msg_id: str = "msg_1", at: datetime | None = None
) -> dict[str, str]:
    when = at or datetime.now(UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, when, body),
        "content-type": "application/json",
    }


BODY = json.dumps(event_json("m-signed")).encode()


def test_either_secret_of_a_rotation_verifies_and_nothing_else_does() -> None:
    check = SignatureCheck([OLD, NEW])
    pairs = lambda headers: [(k.encode(), v.encode()) for k, v in headers.items()]  # noqa: E731

    assert check.verify(BODY, pairs(signed(BODY, OLD))) == "msg_1"
    assert check.verify(BODY, pairs(signed(BODY, NEW))) == "msg_1"
    assert check.verify(BODY + b" ", pairs(signed(BODY, NEW))) is None
    assert check.verify(BODY, pairs(signed(BODY, "whsec_" + "A" * 32))) is None
    stale = signed(BODY, NEW, at=datetime.now(UTC) - timedelta(minutes=6))
    assert check.verify(BODY, pairs(stale)) is None
    both = signed(BODY, NEW)
    both["webhook-signature"] = "v1,bm9wZQ== " + both["webhook-signature"]
    assert check.verify(BODY, pairs(both)) == "msg_1"
    missing = {k: v for k, v in signed(BODY).items() if k != "webhook-timestamp"}
    assert check.verify(BODY, pairs(missing)) is None


@given(
    headers=st.lists(
        st.tuples(
            st.sampled_from([b"webhook-id", b"webhook-timestamp", b"webhook-signature", b"x"]),
            st.binary(max_size=80)
            | st.sampled_from([b"v1,", b"v1", b",", b"nan", b"1e400", b"-1", b"v1,==="]),
        ),
        max_size=5,
    ),
    body=st.binary(max_size=64),
)
def test_no_malformed_signature_header_raises(
    headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    assert SignatureCheck([OLD, NEW]).verify(body, headers) is None


@pytest.fixture
def signing(config: ReceiverConfig, make_client: Any) -> TestClient[Any]:
    return make_client(config, signing_secrets=(OLD, NEW))


def test_a_signed_webhook_is_taken_and_an_unsigned_or_tampered_one_is_a_401(
    signing: TestClient[Any], queue: QueueReader, config: ReceiverConfig
) -> None:
    ok = signing.post(URL, content=BODY, headers=signed(BODY))
    unsigned = signing.post(URL, content=BODY)
    tampered = signing.post(
        URL, content=BODY.replace(b"m-signed", b"m-forged"), headers=signed(BODY)
    )
    garbage = signing.post(
        URL,
        content=BODY,
        headers={
            "webhook-id": b"x",
            "webhook-timestamp": b"soon",
            "webhook-signature": b"\xe9t\xe9",
        },
    )

    assert ok.status_code == 200
    assert [r.status_code for r in (unsigned, tampered, garbage)] == [401, 401, 401]
    assert "webhook signature" in unsigned.json()["error"]
    assert [e.message_id for r in queue.receipts() for e in r.events] == ["m-signed"]
    assert signing.app.state.outcomes["unauthorized"] == 3
    assert [record["status"] for record in reject_records(config)] == [401, 401, 401]


def test_a_copy_of_a_signed_request_already_taken_is_answered_and_not_queued_again(
    signing: TestClient[Any], queue: QueueReader
) -> None:
    headers = signed(BODY, msg_id="msg_resent")

    first = signing.post(URL, content=BODY, headers=headers)
    again = signing.post(URL, content=BODY, headers=headers)
    other = signing.post(URL, content=BODY, headers=signed(BODY, msg_id="msg_other"))

    assert first.json() == {"status": "received"}
    assert again.status_code == 200
    assert again.json() == {"status": "received", "duplicate": True}
    assert other.json() == {"status": "received"}
    assert len(queue.receipts()) == 2
