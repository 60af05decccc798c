"""What the receiver's OpenAPI document (``GET /schema/openapi.json``, with ``OPENAPI`` on)
says beyond what Litestar derives from its route handlers.

Litestar sees neither the webhook nor ``POST /v1/sends``: both are served by the plain ASGI
intake (:mod:`receiver.intake`) mounted beside the router. And ``GET /v1/messages`` reads its
query itself, so that an unknown or repeated parameter gets a 400 naming it; Litestar would
otherwise not know its parameters. :func:`document` adds all three to the document Litestar
built, from the same names the handlers use (:data:`receiver.reads.QUERY`), and the bearer
tokens each operation needs.
"""

from __future__ import annotations

from litestar.openapi.spec import (
    Components,
    OpenAPI,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    PathItem,
    Reference,
    RequestBody,
    Schema,
    SecurityRequirement,
    SecurityScheme,
)

from receiver.reads import MAX_LIMIT, QUERY

_STRING = Schema(type=OpenAPIType.STRING)
_JSON = "application/json"

#: One status event, in any of the shapes Qlara documents (A: the guide; B: the platform
#: guide; C: the SMS Universal callback). Fields not named here are kept as sent.
EVENT = Schema(
    type=OpenAPIType.OBJECT,
    description=(
        "A delivery-status event as Qlara posts it. Shape A: messageId, customerMessageId, "
        "phoneNumber, status (SENT DELIVERED ERROR EXPIRED), timestamp, channel, error. "
        "Shape B: eventType DELIVERY (statusCode, description, destination), READ or INBOUND "
        "(source, destination, text). Shape C: eventType DELIVERY with statusCode, "
        "statusDescription, price, numPart, totalParts. Unknown statuses, channels and "
        "fields are kept."
    ),
    required=["messageId"],
    any_of=[Schema(required=["status"]), Schema(required=["eventType"])],
    properties={
        "messageId": Schema(type=OpenAPIType.STRING, min_length=1),
        "customerMessageId": Schema(one_of=[_STRING, Schema(type=OpenAPIType.NULL)]),
        "status": _STRING,
        "eventType": _STRING,
        "statusCode": Schema(type=OpenAPIType.INTEGER),
        "description": _STRING,
        "statusDescription": _STRING,
        "timestamp": Schema(
            one_of=[_STRING, Schema(type=OpenAPIType.NUMBER)],
            description="ISO 8601, or unix seconds",
        ),
        "channel": _STRING,
        "error": Schema(one_of=[_STRING, Schema(type=OpenAPIType.NULL)]),
        "phoneNumber": _STRING,
        "destination": _STRING,
        "source": _STRING,
        "text": _STRING,
        "price": Schema(type=OpenAPIType.NUMBER),
        "numPart": Schema(type=OpenAPIType.INTEGER),
        "totalParts": Schema(type=OpenAPIType.INTEGER),
    },
)

#: One send the application reports to ``POST /v1/sends``.
SEND = Schema(
    type=OpenAPIType.OBJECT,
    description=(
        "A message the application sent: messageId and/or customerMessageId, channel, "
        "optional phoneNumber and sentAt (default: the time of receipt)."
    ),
    properties={
        "messageId": _STRING,
        "customerMessageId": _STRING,
        "channel": _STRING,
        "phoneNumber": _STRING,
        "sentAt": Schema(
            one_of=[_STRING, Schema(type=OpenAPIType.NUMBER)],
            description="ISO 8601, or unix seconds",
        ),
    },
)

#: Every answer the intake may give, the same for the webhook and for sends.
INTAKE_RESPONSES = {
    "200": 'Durable (enqueued, or spooled and fsync\'d): `{"status":"received"}`; for an '
    'array, `{"status":"received","accepted":N,"rejected":[{"index","error","field"}]}`',
    "400": 'Nothing could be read: `{"status":"rejected","error":<problem>,"field":<name>}`',
    "401": "Missing or wrong credentials (or, with signing on, a missing or wrong signature)",
    "403": "The client's network is not allowed",
    "405": "Only POST",
    "413": "The body is larger than MAX_BODY_BYTES",
    "415": "Only application/json (or application/*+json)",
    "429": "Too many failed authentications from this client: see Retry-After",
    "503": "Neither Redis nor the spool can make it durable now: see Retry-After",
}


def _body(item: Schema) -> RequestBody:
    return RequestBody(
        required=True,
        content={
            _JSON: OpenAPIMediaType(
                schema=Schema(one_of=[item, Schema(type=OpenAPIType.ARRAY, items=item)])
            )
        },
    )


def _responses(answers: dict[str, str]) -> dict[str, OpenAPIResponse | Reference]:
    return {code: OpenAPIResponse(description=text) for code, text in answers.items()}


def _intake(
    operation_id: str,
    summary: str,
    description: str,
    item: Schema,
    *,
    parameters: list[Parameter | Reference] | None = None,
    security: list[SecurityRequirement] | None = None,
) -> Operation:
    return Operation(
        operation_id=operation_id,
        summary=summary,
        description=description,
        parameters=parameters,
        request_body=_body(item),
        responses=_responses(INTAKE_RESPONSES),
        security=security,
    )


def _query_parameters() -> list[Parameter | Reference]:
    found: list[Parameter | Reference] = []
    for name, description in QUERY.items():
        schema = (
            Schema(type=OpenAPIType.INTEGER, minimum=1, maximum=MAX_LIMIT)
            if name == "limit"
            else _STRING
        )
        found.append(Parameter(name=name, param_in="query", schema=schema, description=description))
    return found


def document(openapi: OpenAPI) -> OpenAPI:
    """Add the webhook, ``POST /v1/sends``, the list's query parameters and the bearer
    tokens to ``openapi`` (Litestar's document, before it is first served); return it."""
    components = openapi.components
    if not isinstance(components, Components):
        components = openapi.components = Components()
    components.security_schemes = {
        **(components.security_schemes or {}),
        "readToken": SecurityScheme(type="http", scheme="bearer", description="READ_TOKEN"),
        "sendToken": SecurityScheme(type="http", scheme="bearer", description="SEND_TOKEN"),
        "webhookToken": SecurityScheme(
            type="apiKey",
            name="X-Webhook-Token",
            security_scheme_in="header",
            description="WEBHOOK_TOKEN, when it is not in the path",
        ),
    }
    read: list[SecurityRequirement] = [{"readToken": []}]
    paths = openapi.paths
    assert paths is not None
    for path, item in paths.items():
        if path.startswith("/v1/") and isinstance(item, PathItem) and item.get is not None:
            item.get.security = read
            if path == "/v1/messages":
                item.get.parameters = [*(item.get.parameters or []), *_query_parameters()]
            for parameter in item.get.parameters or []:
                if isinstance(parameter, Parameter) and parameter.name == "message_id":
                    # Litestar calls a path parameter a URI; it is Qlara's id, as given
                    parameter.schema = _STRING
                    parameter.description = "The message id, slashes and all"
    webhook = (
        "One event (an object) or several (an array). Answered 200 only once durable; "
        "Qlara's duplicates are recorded once."
    )
    paths["/webhook/{token}"] = PathItem(
        post=_intake(
            "Webhook",
            "Qlara's delivery-status webhook",
            webhook,
            EVENT,
            parameters=[
                Parameter(
                    name="token",
                    param_in="path",
                    required=True,
                    schema=_STRING,
                    description="WEBHOOK_TOKEN",
                )
            ],
        )
    )
    paths["/webhook"] = PathItem(
        post=_intake(
            "WebhookTokenInHeader",
            "Qlara's delivery-status webhook, the token in a header",
            webhook,
            EVENT,
            security=[{"webhookToken": []}],
        )
    )
    paths["/v1/sends"] = PathItem(
        post=_intake(
            "Sends",
            "What the application sent",
            "One send (an object) or several (an array), recorded as `sent` events with "
            "source `app`. Same durability and answers as the webhook.",
            SEND,
            security=[{"sendToken": []}],
        )
    )
    return openapi
