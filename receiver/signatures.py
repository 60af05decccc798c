"""Standard Webhooks verification (webhook-id, webhook-timestamp, webhook-signature), for the
day Qlara signs its requests.

The signature check is the ``standardwebhooks`` library's (HMAC-SHA256 over
``id.timestamp.body``, a timestamp within 5 minutes, constant-time comparison, several
signatures in one header). Around it, this module adds what the library leaves to its
caller: several secrets (a rotation has two in force), and any malformed header read as "not
signed" rather than an error.

Qlara sends the same webhook-id again when it retries a delivery; once a request with an id
was made durable, the receiver answers a later copy 200 without recording it again
(:data:`SEEN_FOR_S`, in Redis, shared by every receiver process).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from standardwebhooks.webhooks import Webhook

#: How long a webhook-id is remembered: twice the timestamp tolerance, so a copy is either
#: remembered or too old to verify.
SEEN_FOR_S = 600

_HEADERS = (b"webhook-id", b"webhook-timestamp", b"webhook-signature")


class SignatureCheck:
    """Verifies a request against every secret in force. Raises ``ValueError`` for an
    unreadable secret (the settings check them first)."""

    def __init__(self, secrets: Sequence[str]) -> None:
        if not secrets:
            raise ValueError("at least one signing secret is needed")
        try:
            self._hooks = [Webhook(secret) for secret in secrets]
        except Exception as exc:  # binascii.Error, EmptyWebhookSecretError
            raise ValueError("a signing secret is not base64") from exc

    def verify(self, body: bytes, headers: Iterable[tuple[bytes, bytes]]) -> str | None:
        """The request's webhook-id when one secret's signature matches; ``None`` for any
        failure: headers missing, malformed, too old or too new, no signature matching."""
        found = {name: value for name, value in headers if name in _HEADERS}
        if len(found) != len(_HEADERS):
            return None
        try:
            given = {name.decode(): value.decode("ascii") for name, value in found.items()}
        except UnicodeDecodeError:
            return None
        for hook in self._hooks:
            try:
                hook.verify(body, given, json_parse=False)
            except Exception:  # noqa: S112 - every failure means "not this secret"
                continue
            return given["webhook-id"]
        return None
