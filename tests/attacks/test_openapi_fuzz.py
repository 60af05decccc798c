"""Every operation the receiver's OpenAPI document describes, driven by schemathesis with
data that fits the schema and data that does not, through the real receiver and then real
workers, on both ledgers: no answer of 500 or more, and the ledger holds exactly the events
the receiver accepted.

The document is the one the receiver serves (``OPENAPI`` on); the credentials are the
sidecar's own, so that the cases reach the parsers rather than stop at a 401 (the refusals
have tests of their own, in tests/attacks/test_refused.py)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from litestar.testing import TestClient
from schemathesis import GenerationMode
from schemathesis.core.result import Ok

from receiver import ReceiverConfig
from tests.attacks.test_hostile_json import _events, ledger_total
from tests.receiver.conftest import READ_TOKEN, SEND_TOKEN, TOKEN, QueueReader
from workers import QUEUE_NAME

pytestmark = [pytest.mark.redis, pytest.mark.e2e]

#: Cases per operation and generation mode (both modes where there is something to break).
EXAMPLES = 60


@pytest.fixture
def client(config: ReceiverConfig, make_client: Callable[..., TestClient[Any]]) -> TestClient[Any]:
    return make_client(config, openapi=True)


def _credentials(case: Any) -> dict[str, str]:
    """The sidecar's own credentials for ``case``'s operation (set in place for the path)."""
    path = case.operation.path
    if path == "/webhook/{token}":
        case.path_parameters = {**(case.path_parameters or {}), "token": TOKEN}
        return {}
    if path == "/webhook":
        return {"X-Webhook-Token": TOKEN}
    if path == "/v1/sends":
        return {"Authorization": f"Bearer {SEND_TOKEN}"}
    return {"Authorization": f"Bearer {READ_TOKEN}"}


def _send(client: TestClient[Any], case: Any) -> int:
    headers = _credentials(case)
    kwargs = case.as_transport_kwargs(base_url=str(client.base_url), headers=headers)
    body: dict[str, Any] = {}
    if "json" in kwargs:
        body["json"] = kwargs["json"]
    elif kwargs.get("data") is not None:
        body["content"] = kwargs["data"]
    response = client.request(
        kwargs["method"],
        kwargs["url"],
        headers=kwargs["headers"],
        params=kwargs.get("params"),
        **body,
    )
    return response.status_code


def _exercise(
    client: TestClient[Any], operation: Any, mode: GenerationMode, answers: Counter[Any]
) -> None:
    """Call ``operation`` with :data:`EXAMPLES` cases of ``mode``; count each answer."""
    name = f"{operation.method.upper()} {operation.path}"

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,  # the same cases on every run: a test that passes passes again
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def call(case: Any) -> None:
        status = _send(client, case)
        answers[(name, status)] += 1
        # Then nothing is answered with a server error
        assert status < 500, (case.as_curl_command(), status)

    call()


def test_every_documented_operation_answers_below_500_and_the_ledger_holds_what_it_accepted(
    client: TestClient[Any],
    drain: Callable[[], None],
    backend: str,
    namespace: str,
    redis_url: str,
) -> None:
    # Given the document the receiver serves
    served = client.get("/schema/openapi.json")
    assert served.status_code == 200
    schema = schemathesis.openapi.from_dict(served.json())
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the document has an unusable operation: {result}"
        operations.append(result.ok())
    documented = {f"{op.method.upper()} {op.path}" for op in operations}
    assert {"POST /webhook/{token}", "POST /webhook", "POST /v1/sends"} <= documented
    assert "GET /v1/messages" in documented

    # When every operation is called with cases that fit the schema and cases that do not
    answers: Counter[tuple[str, int]] = Counter()
    queue = QueueReader(redis_url, namespace, QUEUE_NAME)
    paths = served.json()["paths"]
    for operation in operations:
        raw = paths[operation.path][operation.method.lower()]
        modes = [GenerationMode.POSITIVE]
        if raw.get("parameters") or raw.get("requestBody"):
            modes.append(GenerationMode.NEGATIVE)  # there is something to get wrong
        for mode in modes:
            _exercise(client, operation, mode, answers)
    accepted = _events(queue.receipts())

    # And real workers record exactly what the receiver accepted
    drain()
    assert ledger_total(backend) == len(accepted)

    tried = sum(answers.values())
    by_status = Counter(status for (_, status) in answers.elements())
    print(f"{tried} requests over {len(documented)} operations; answers {dict(by_status)}")
    assert {name for (name, _) in answers} == documented  # every operation was called
    # And the intake did accept events by each of its ways in, so the ledger check counts
    accepted_by = {op for (op, status) in answers if status == 200}
    assert {"POST /webhook/{token}", "POST /webhook", "POST /v1/sends"} <= accepted_by
