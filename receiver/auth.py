"""Who may post to the webhook, and who may read: tokens, HTTP Basic, source networks.

Secrets are compared in constant time on bytes (``hmac.compare_digest``). A token taken
from the URL path is encoded as UTF-8 with ``surrogateescape``, so any path, even one that
is not valid UTF-8, compares without raising; header values are compared as the raw bytes
received. Nothing here logs or returns a secret.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
from collections.abc import Iterable

from receiver.config import ReceiverConfig

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def secret_bytes(value: str) -> bytes:
    """``value`` as the bytes it is compared as; never raises.

    ``surrogateescape`` gives back the original bytes of a path decoded with it; a lone
    surrogate that escape cannot encode is passed through as such.
    """
    try:
        return value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogatepass")


def same_secret(given: bytes, expected: bytes) -> bool:
    """Constant-time equality of two byte strings."""
    return hmac.compare_digest(given, expected)


def bearer_matches(authorization: bytes | None, expected: bytes) -> bool:
    """Whether an ``Authorization`` header value is ``Bearer <expected>``."""
    scheme, _, credentials = (authorization or b"").strip().partition(b" ")
    ok = same_secret(credentials.strip(), expected)
    return ok and scheme.lower() == b"bearer"


def bearer_in_headers(headers: Iterable[tuple[bytes, bytes]], expected: bytes) -> bool:
    """Whether the request's ``Authorization`` header (the last one, when repeated) is
    ``Bearer <expected>``; ``headers`` are raw ASGI header pairs."""
    authorization = None
    for name, value in headers:
        if name == b"authorization":
            authorization = value
    return bearer_matches(authorization, expected)


def parse_networks(cidrs: Iterable[str]) -> tuple[IPNetwork, ...]:
    """Parse CIDRs (host bits allowed). Raises ``ValueError`` naming the bad one."""
    networks: list[IPNetwork] = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"not a network in CIDR notation: {cidr!r}") from exc
    return tuple(networks)


def _address(value: str) -> IPAddress | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # "[v6]:port" as some proxies write it
        value = value[1 : value.index("]")]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class WebhookGuard:
    """The checks in front of the intake: source network, token, HTTP Basic.

    Built once from :class:`ReceiverConfig`; raises ``ValueError`` for a bad CIDR.
    """

    def __init__(self, config: ReceiverConfig) -> None:
        self._token = None if config.webhook_token is None else secret_bytes(config.webhook_token)
        self._no_auth = config.allow_no_auth
        self._basic = (
            None
            if config.basic_auth is None
            else (secret_bytes(config.basic_auth[0]), secret_bytes(config.basic_auth[1]))
        )
        self._allowed = parse_networks(config.allowed_networks)
        self._trusted = parse_networks(config.trusted_proxies)

    @property
    def wants_basic(self) -> bool:
        """Whether HTTP Basic credentials are required."""
        return self._basic is not None

    def source_allowed(self, peer: str | None, forwarded_for: list[bytes]) -> bool:
        """Whether the request's source is in the allowlist (always, when it is empty).

        ``peer`` is the direct peer's address; ``forwarded_for`` the ``X-Forwarded-For``
        header values in order, believed only when the peer is a trusted proxy.
        """
        if not self._allowed:
            return True
        source = self.client_address(peer, forwarded_for)
        return source is not None and any(source in network for network in self._allowed)

    def client_address(self, peer: str | None, forwarded_for: list[bytes]) -> IPAddress | None:
        """The client's address: the peer, or, behind trusted proxies, the right-most
        ``X-Forwarded-For`` hop that is not a trusted proxy. ``None`` when unreadable."""
        address = None if peer is None else _address(peer)
        if address is None or not forwarded_for or not self._is_trusted(address):
            return address
        hops = [
            hop
            for value in forwarded_for
            for hop in value.decode("latin-1").split(",")
            if hop.strip()
        ]
        for hop in reversed(hops):
            hop_address = _address(hop)
            if hop_address is None:  # an unreadable hop: nothing left of it can be believed
                return None
            address = hop_address
            if not self._is_trusted(hop_address):
                return hop_address
        return address

    def token_ok(self, path_token: str, header_token: bytes | None) -> bool:
        """Whether the webhook token (from the path, else the header) is right.

        Without any token the answer is ``allow_no_auth``; a token given when none is
        configured is wrong.
        """
        if path_token:
            given: bytes | None = secret_bytes(path_token)
        else:
            given = header_token
        if given is None or not given:
            return self._no_auth
        if self._token is None:
            same_secret(given, given)  # same work as a comparison, for uniform timing
            return False
        return same_secret(given, self._token)

    def basic_ok(self, authorization: bytes | None) -> bool:
        """Whether HTTP Basic credentials are right (always, when none are configured)."""
        if self._basic is None:
            return True
        user, password = self._basic
        given_user, given_password = b"", b""
        if authorization is not None:
            scheme, _, encoded = authorization.strip().partition(b" ")
            if scheme.lower() == b"basic":
                try:
                    decoded = base64.b64decode(encoded.strip(), validate=True)
                except (binascii.Error, ValueError):
                    decoded = b""
                given_user, _, given_password = decoded.partition(b":")
        # Both compared, whatever the first says: no early exit to time.
        user_ok = same_secret(given_user, user)
        password_ok = same_secret(given_password, password)
        return user_ok and password_ok and authorization is not None

    def _is_trusted(self, address: IPAddress) -> bool:
        return any(address in network for network in self._trusted)
