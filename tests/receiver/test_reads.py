"""The read API (messages, history, stats), health and readiness, and the OpenAPI switch."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from ledger import Ledger
from qlara import Receipt, Shape, Source, parse_body
from receiver import ReceiverConfig
from tests.receiver.conftest import READ_TOKEN, TOKEN, closed_redis_url, event_json

pytestmark = pytest.mark.redis

AUTH = {"authorization": f"Bearer {READ_TOKEN}"}


@pytest.fixture
def ledger(sqlite_url: str) -> Iterator[Ledger]:
    opened = Ledger.connect(sqlite_url)
    yield opened
    opened.close()


def record(ledger: Ledger, *items: dict[str, Any]) -> None:
    parsed = parse_body(json.dumps(list(items)).encode())
    ledger.record(
        Receipt(
            receipt_id=uuid.uuid4().hex,
            received_at=time.time(),
            events=tuple(parsed.events),
            inbound=tuple(parsed.inbound),
        )
    )


def test_a_message_is_shown_with_its_state_and_ordered_history(
    client: TestClient[Any], ledger: Ledger
) -> None:
    record(
        ledger,
        event_json("m-1", "DELIVERED", timestamp="2025-03-01T10:00:05Z", customerMessageId="c-1"),
        event_json("m-1", "SENT", timestamp="2025-03-01T10:00:00Z"),
    )

    response = client.get("/v1/messages/m-1", headers=AUTH)

    assert response.status_code == 200
    body = response.json()
    assert body["messageId"] == "m-1"
    assert body["status"] == "delivered"
    assert body["isFinal"] is True
    assert body["customerMessageId"] == "c-1"
    assert body["eventCount"] == 2
    assert [e["status"] for e in body["events"]] == ["sent", "delivered"]
    assert body["events"][0]["raw"] == event_json("m-1", "SENT", timestamp="2025-03-01T10:00:00Z")
    assert {"eventTime", "receivedAt", "statusCode", "totalParts", "timeFromReceipt"} <= set(
        body["events"][0]
    )
    assert body["events"][0]["timeFromReceipt"] is False


def test_an_unknown_message_is_404_in_json(client: TestClient[Any], ledger: Ledger) -> None:
    response = client.get("/v1/messages/nope", headers=AUTH)

    assert response.status_code == 404
    assert response.json() == {"error": "unknown message"}


@pytest.mark.parametrize(
    "headers",
    [{}, {"authorization": "Bearer wrong"}, {"authorization": READ_TOKEN}, {"x": "y"}],
)
@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/m-1", "/v1/stats/webhook"])
def test_the_read_api_needs_the_bearer_token(
    client: TestClient[Any], headers: dict[str, str], path: str
) -> None:
    response = client.get(path, headers=headers)

    assert response.status_code == 401
    assert response.json() == {"error": "missing or invalid bearer token"}


def test_messages_are_listed_newest_first_a_page_at_a_time(
    client: TestClient[Any], ledger: Ledger
) -> None:
    for n in range(5):
        record(ledger, event_json(f"m-{n}"))

    first = client.get("/v1/messages", params={"limit": 2}, headers=AUTH).json()
    second = client.get(
        "/v1/messages", params={"limit": 2, "cursor": first["nextCursor"]}, headers=AUTH
    ).json()
    third = client.get(
        "/v1/messages", params={"limit": 2, "cursor": second["nextCursor"]}, headers=AUTH
    ).json()

    ids = [item["messageId"] for page in (first, second, third) for item in page["items"]]
    assert ids == [f"m-{n}" for n in reversed(range(5))]
    assert third["nextCursor"] is None
    assert "events" not in first["items"][0]


def test_messages_are_filtered_by_every_parameter_given(
    client: TestClient[Any], ledger: Ledger
) -> None:
    record(ledger, event_json("m-1", customerMessageId="c-1", channel="sms"))
    record(ledger, event_json("m-2", "SENT", channel="whatsapp", phoneNumber="+441234567890"))

    def ids(**params: Any) -> list[str]:
        page = client.get("/v1/messages", params=params, headers=AUTH).json()
        return [item["messageId"] for item in page["items"]]

    assert ids(customerMessageId="c-1") == ["m-1"]
    assert ids(channel="WHATSAPP") == ["m-2"]
    assert ids(status="delivered") == ["m-1"]
    assert ids(phone="4567890") == ["m-2"]
    assert ids(since="2000-01-01T00:00:00Z", until="2999-01-01") == ["m-2", "m-1"]
    assert ids(until="2000-01-01T00:00:00+01:00") == []


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2025-13-01"}, "until"),
        ({"since": "2025-01-02", "until": "2025-01-01"}, "until"),
        ({"since": "9999-12-31T23:59:59-01:00"}, "since"),
        ({"until": "0001-01-01T00:00:00+01:00"}, "until"),
        ({"since": "1" + "0" * 400}, "since"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"status": ""}, "status"),
        ({"customerMessageId": "x" * 201}, "customerMessageId"),
        ({"colour": "red"}, "colour"),
        ([("phone", "1"), ("phone", "2")], "phone"),
    ],
)
def test_a_bad_query_value_is_400_naming_the_parameter(
    client: TestClient[Any], ledger: Ledger, params: Any, parameter: str
) -> None:
    response = client.get("/v1/messages", params=params, headers=AUTH)

    assert response.status_code == 400
    assert response.json()["parameter"] == parameter
    assert isinstance(response.json()["error"], str)


def test_webhook_stats_report_traffic_pending_and_totals(
    client: TestClient[Any], ledger: Ledger
) -> None:
    record(ledger, event_json("m-1", "SENT"), event_json("m-2", "DELIVERED"))
    record(ledger, event_json("m-1", "SENT"))  # sent again: a duplicate
    record(ledger, event_json("m-3", "SENT"))
    polled = parse_body(json.dumps(event_json("m-3", "DELIVERED")).encode()).events[0]
    ledger.record(  # m-3's final, found by the reconciler: the webhook never delivered it
        Receipt(
            receipt_id=uuid.uuid4().hex,
            received_at=time.time(),
            events=(msgspec.structs.replace(polled, source=Source.POLL, shape=Shape.POLL),),
        )
    )

    body = client.get("/v1/stats/webhook", headers=AUTH).json()

    assert set(body["lastEventAt"]) == {"sms"}
    assert body["eventsLast5m"] == body["eventsLast60m"] == 3  # the polled one is not the webhook's
    assert body["pending"] == 1
    assert body["oldestPendingAgeSeconds"] > 0
    assert (body["eventsTotal"], body["duplicatesTotal"], body["inboundTotal"]) == (4, 1, 0)
    assert body["filledByPollingTotal"] == 1


def test_a_ledger_that_cannot_answer_gives_503(config: ReceiverConfig, make_client: Any) -> None:
    client = make_client(
        config, database_url="postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1"
    )

    response = client.get("/v1/stats/webhook", headers=AUTH)

    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"


def test_healthz_needs_no_token(client: TestClient[Any]) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_is_200_with_redis_and_database_up(client: TestClient[Any], ledger: Ledger) -> None:
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "redis": True,
        "database": True,
        "spool": {"events": 0, "bytes": 0, "accepting": True},
    }


def test_readyz_stays_200_while_the_spool_takes_what_redis_cannot(
    config: ReceiverConfig, make_client: Any, ledger: Ledger
) -> None:
    # Ready means "a webhook gets a 200 now": a load balancer must not cut Qlara off exactly
    # when the spool is doing its job.
    client = make_client(config, redis_url=closed_redis_url(), spool_drain_interval=60)
    assert client.post(f"/webhook/{TOKEN}", content=json.dumps(event_json())).status_code == 200

    response = client.get("/readyz")

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["redis"], body["database"]) == ("ready", False, True)
    assert body["spool"]["events"] == 1
    assert body["spool"]["bytes"] > 0
    assert body["spool"]["accepting"] is True


def test_readyz_stays_200_with_the_ledger_down_since_webhooks_are_still_taken(
    config: ReceiverConfig, make_client: Any
) -> None:
    client = make_client(
        config, database_url="postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1"
    )

    response = client.get("/readyz")

    assert response.status_code == 200
    assert (response.json()["redis"], response.json()["database"]) == (True, False)


def test_readyz_is_503_when_neither_redis_nor_the_spool_can_take_a_webhook(
    config: ReceiverConfig, make_client: Any, ledger: Ledger
) -> None:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    config.spool_dir.write_text("a file where the spool directory should be")
    client = make_client(config, redis_url=closed_redis_url(), spool_drain_interval=60)
    refused = client.post(f"/webhook/{TOKEN}", content=json.dumps(event_json()))

    response = client.get("/readyz")

    assert refused.status_code == 503
    assert response.status_code == 503
    body = response.json()
    assert (body["status"], body["redis"], body["spool"]["accepting"]) == (
        "unavailable",
        False,
        False,
    )


def test_the_openapi_schema_is_served_only_when_enabled(
    config: ReceiverConfig, make_client: Any
) -> None:
    assert make_client(config).get("/schema/openapi.json").status_code == 404
    enabled = make_client(config, openapi=True).get("/schema/openapi.json")
    assert enabled.status_code == 200
    paths = enabled.json()["paths"]
    # It describes what Litestar cannot see: the intake and the list's query parameters
    assert {"/v1/messages", "/webhook/{token}", "/webhook", "/v1/sends"} <= set(paths)
    listed = {p["name"] for p in paths["/v1/messages"]["get"]["parameters"]}
    assert listed == {
        "customerMessageId", "phone", "status", "channel", "since", "until", "limit", "cursor"
    }  # fmt: skip
    assert paths["/v1/messages"]["get"]["security"] == [{"readToken": []}]
    assert paths["/v1/sends"]["post"]["security"] == [{"sendToken": []}]
    assert set(paths["/webhook/{token}"]["post"]["responses"]) >= {"200", "400", "401", "503"}
    # And no secret of this sidecar's is in it
    assert TOKEN not in enabled.text
    assert READ_TOKEN not in enabled.text


def test_unknown_paths_and_wrong_methods_answer_json(client: TestClient[Any]) -> None:
    assert client.get("/nowhere").json() == {"error": "not found"}
    response = client.delete("/v1/messages", headers=AUTH)
    assert response.status_code == 405
    assert response.json() == {"error": "method not allowed"}


def test_a_multi_part_sms_shows_the_part_that_failed_and_why(
    client: TestClient[Any], ledger: Ledger
) -> None:
    # Given SMS Universal notifications: part 1/2 not delivered at :44, part 2/2 at :45
    def universal(part: int, code: int, second: int, description: str) -> dict[str, Any]:
        return {
            "channel": "SMS",
            "eventType": "DELIVERY",
            "messageId": "m-parts",
            "statusCode": code,
            "statusDescription": description,
            "price": 0.035,
            "numPart": part,
            "totalParts": 2,
            "timestamp": f"2025-03-01T10:00:{second}Z",
        }

    record(ledger, universal(2, 3, 45, "Delivered"))
    part_two_only = client.get("/v1/messages/m-parts", headers=AUTH).json()
    record(ledger, universal(1, 6, 44, "Not delivered"))

    # Then with one part in, the message is in flight; with both, it failed, naming why
    assert (part_two_only["status"], part_two_only["isFinal"]) == ("sent", False)
    assert [p["status"] for p in part_two_only["parts"]] == [None, "delivered"]
    body = client.get("/v1/messages/m-parts", headers=AUTH).json()
    assert (body["status"], body["isFinal"], body["error"]) == ("error", True, "Not delivered")
    assert body["finalAt"] == "2025-03-01T10:00:45Z"
    assert body["parts"] == [
        {
            "part": 1,
            "totalParts": 2,
            "status": "error",
            "eventTime": "2025-03-01T10:00:44Z",
            "isFinal": True,
            "error": "Not delivered",
        },
        {
            "part": 2,
            "totalParts": 2,
            "status": "delivered",
            "eventTime": "2025-03-01T10:00:45Z",
            "isFinal": True,
            "error": None,
        },
    ]


@pytest.mark.parametrize("message_id", ["acct/2025/m-1", "a//b", "trailing/", "sp ace/%41"])
def test_a_message_id_with_slashes_is_read_back_whether_they_are_escaped_or_not(
    client: TestClient[Any], ledger: Ledger, message_id: str
) -> None:
    from urllib.parse import quote

    record(ledger, event_json(message_id, "DELIVERED"))

    for path in (quote(message_id, safe="/"), quote(message_id, safe="")):
        response = client.get(f"/v1/messages/{path}", headers=AUTH)
        assert response.status_code == 200, (path, response.text)
        assert response.json()["messageId"] == message_id
