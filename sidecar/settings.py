"""The one typed configuration object, read from ``QLARA_SIDECAR_*`` and the CLI flags.

Precedence is flag > environment > default. Every field carries a description: ``--help``,
``qlara-sidecar config`` and the README's settings table are all generated from it.

:func:`load_settings` is the only constructor the entry points use. It turns pydantic's
validation errors into :class:`SettingsError`, whose message names the environment variable
and the accepted values in one line (``QLARA_SIDECAR_PORT: must be an integer between 1 and
65535``), so a bad value never shows a traceback.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from annotated_types import Ge, Gt, Le
from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from dashboard import CHANNELS, format_duration, parse_duration
from qlara import parse_country_labels

ENV_PREFIX = "QLARA_SIDECAR_"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
LogLevel = Literal["debug", "info", "warning", "error"]
LogFormat = Literal["auto", "json", "console"]
AppendFsync = Literal["always", "everysec"]
ApiVariant = Literal["messages", "partner-gateway"]

_NAMESPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
# Fields whose value is an empty string mean "unset": an exported but empty variable is
# how shells and compose files say "no value".
_OPTIONAL_STRINGS = (
    "webhook_token",
    "read_token",
    "redis_url",
    "database_url",
    "basic_auth_user",
    "basic_auth_password",
    "metrics_token",
    "dashboard_password",
    "webhook_signing_secrets",
    "tls_cert_file",
    "tls_key_file",
    "alert_thresholds",
    "dashboard_stuck_after",
    "dashboard_oidc_metadata_url",
    "dashboard_oidc_client_id",
    "dashboard_oidc_client_secret",
    "dashboard_public_url",
)


#: How long each channel waits before the reconciler polls, when RECONCILE_AFTER says nothing.
DEFAULT_RECONCILE_AFTER: dict[str, timedelta] = {
    "sms": timedelta(minutes=10),
    "rcs": timedelta(minutes=30),
    "whatsapp": timedelta(minutes=30),
    "other": timedelta(minutes=30),
}


def api_limits(text: str) -> tuple[int, int]:
    """``50/s,1000/m`` as (per second, per minute). Raises ``ValueError`` naming the problem."""
    found: dict[str, int] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        count, _, unit = part.partition("/")
        if unit.strip() not in ("s", "m") or not count.strip().isdigit() or int(count) < 1:
            raise ValueError(f"{part!r}: use N/s,N/m, e.g. 50/s,1000/m")
        found[unit.strip()] = int(count)
    if set(found) != {"s", "m"}:
        raise ValueError("give both limits, per second and per minute, e.g. 50/s,1000/m")
    return found["s"], found["m"]


#: The expiry horizon of each channel when EXPIRY_HORIZON does not name it.
DEFAULT_EXPIRY_HORIZON: dict[str, timedelta] = {
    "sms": timedelta(hours=48),
    "rcs": timedelta(hours=48),
    "whatsapp": timedelta(hours=24),
    "other": timedelta(hours=48),
}

#: The per-channel settings' defaults, for the channels a value does not name.
_PER_CHANNEL_DEFAULTS: dict[str, Mapping[str, timedelta]] = {
    "expiry_horizon": DEFAULT_EXPIRY_HORIZON,
    "reconcile_after": DEFAULT_RECONCILE_AFTER,
}


class SettingsError(Exception):
    """A setting has an invalid value; ``str(error)`` is the one-line message for the user."""


class Settings(BaseSettings):
    """Everything the sidecar can be told, with its default. Build it with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        case_sensitive=False,
        extra="forbid",
        frozen=True,
        validate_default=True,
    )

    data_dir: Path = Field(
        Path("./qlara-data"),
        description="Directory for the SQLite ledger, the spool, tokens.json and the "
        "embedded Redis's append-only file. Private to its user: kept at mode 0700, and "
        "what the sidecar writes in it is 0600.",
    )
    host: str = Field("127.0.0.1", description="Address the receiver listens on.")
    port: int = Field(8000, ge=1, le=65535, description="TCP port the receiver listens on.")
    webhook_token: SecretStr | None = Field(
        None,
        description="Secret path segment of the webhook URL (/webhook/<token>). Unset: one is "
        "generated, stored in DATA_DIR/tokens.json and printed once.",
    )
    read_token: SecretStr | None = Field(
        None,
        description="Bearer token of the read API (Authorization: Bearer ...). Unset: one is "
        "generated, stored in DATA_DIR/tokens.json and printed once.",
    )
    send_token: SecretStr | None = Field(
        None,
        description="Bearer token of POST /v1/sends, where the application reports what it "
        "sent (Authorization: Bearer ...); never the read or webhook token. Unset: one is "
        "generated, stored in DATA_DIR/tokens.json and printed once.",
    )
    metrics_token: SecretStr | None = Field(
        None,
        description="Bearer token GET /metrics requires (Authorization: Bearer ...). Unset: "
        "the metrics are served without one, like /healthz.",
    )
    metrics_host: str = Field(
        "127.0.0.1",
        description="Address of the separate metrics listener (METRICS_PORT); keep it on "
        "loopback or a private network.",
    )
    metrics_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="TCP port of a separate listener serving GET /metrics and /healthz only; "
        "the receiver's port then answers 404 for /metrics. 0: /metrics is served on the "
        "receiver's port. Required by `qlara-sidecar metrics`.",
    )
    redis_url: str | None = Field(
        None,
        description="Redis used as the queue, e.g. redis://10.0.0.5:6379/0. Unset: `up` starts "
        "its own Redis-compatible server under DATA_DIR, on loopback, with a generated "
        "password kept in DATA_DIR/tokens.json.",
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the ledger, e.g. postgresql+psycopg://user@host/db. "
        "Unset: SQLite under DATA_DIR.",
    )
    workers: int | None = Field(
        None,
        ge=1,
        le=256,
        description=(
            "Worker processes started by `up` and `worker`. Unset: 1 with an SQLite ledger "
            "(SQLite takes one writer at a time; a second process only waits for the lock), "
            "2 with PostgreSQL."
        ),
    )
    worker_threads: int = Field(
        64,
        ge=1,
        le=256,
        description=(
            "Threads in each worker process. The messages they handle at the same moment are "
            "recorded in one ledger transaction, so more threads make larger, cheaper transactions."
        ),
    )
    receiver_processes: int | None = Field(
        None,
        ge=1,
        le=256,
        description=(
            "Receiver (HTTP) processes. Unset: 1 under `up`, which runs beside an application "
            "(one process acknowledges more than the workers beside it record, and each more "
            "costs its own interpreter's memory), the number of CPUs for `receiver`."
        ),
    )
    allow_no_auth: bool = Field(
        False,
        description="Accept webhooks without a token. Only behind a proxy that authenticates; "
        "a warning is logged at start.",
    )
    basic_auth_user: str | None = Field(
        None, description="HTTP Basic user required on the webhook, in addition to the token."
    )
    basic_auth_password: SecretStr | None = Field(
        None, description="HTTP Basic password; set together with BASIC_AUTH_USER."
    )
    webhook_signing_secrets: SecretStr | None = Field(
        None,
        description="Standard Webhooks signing secrets (whsec_..., comma-separated: two while "
        "rotating). Set: every webhook must also carry webhook-id, a webhook-timestamp within "
        "5 minutes and a webhook-signature one of them made, or it gets 401; a webhook-id "
        "seen in the last 10 minutes is answered 200 and not recorded again. Unset: not "
        "checked (Qlara signs nothing yet).",
    )
    allowed_networks: Annotated[tuple[Network, ...], NoDecode] = Field(
        (),
        description="Comma-separated CIDRs allowed to POST webhooks, e.g. 203.0.113.0/24. "
        "Empty: any address.",
    )
    trusted_proxies: Annotated[tuple[Network, ...], NoDecode] = Field(
        (),
        description="Comma-separated CIDRs of reverse proxies whose X-Forwarded-For is "
        "believed when checking ALLOWED_NETWORKS.",
    )
    allowed_hosts: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="Comma-separated host names the receiver answers to (its Host header), "
        "e.g. hooks.example.com or *.example.com; any other gets 400. /healthz and /readyz "
        "answer any. Empty: any host.",
    )
    max_body_bytes: int = Field(
        65536, ge=256, le=64 * 1024 * 1024, description="Largest webhook body accepted, in bytes."
    )
    redis_timeout: float = Field(
        0.25, gt=0, le=60, description="Seconds one Redis call may take before the spool is used."
    )
    enqueue_deadline: float = Field(
        0.5,
        gt=0,
        le=60,
        description="Seconds the receiver may spend making one request durable before answering.",
    )
    retention_days: int = Field(
        90, ge=1, le=36500, description="Days events are kept in the ledger before purging."
    )
    qlara_api_key: SecretStr | None = Field(
        None,
        description="Qlara API key (sent as X-Api-Key). Set: the reconciler polls Qlara's status "
        "API for final statuses the webhook never delivered, and `webhook show|register` work. "
        "Unset: no call to Qlara is made.",
    )
    qlara_api_url: str = Field(
        "https://lora-api.agiletelecom.com/api",
        description="Base URL of Qlara's API; both surfaces are relative to it.",
    )
    qlara_api_variant: ApiVariant = Field(
        "messages",
        description="Which documented surface to call: messages (the guide's /messages/status/..."
        ", /webhooks/delivery-status) or partner-gateway (/partner-gateway/v1/..., with the "
        "channel on every status call).",
    )
    qlara_api_limits: str = Field(
        "50/s,1000/m",
        description="The account's rate limits, never exceeded in any second or minute "
        "(trial accounts: 10/s,100/m). The reconciler spends at most half of them.",
    )
    webhook_public_url: SecretStr | None = Field(
        None,
        description="The HTTPS URL Qlara calls, token included (https://hooks.example.com/"
        "webhook/<token>): what `webhook register` registers, and what the registration check "
        "expects on file (qlara_webhook_registration_ok). A secret: it holds the token.",
    )
    reconcile_after: str = Field(
        "sms=10m,rcs=30m,whatsapp=30m,other=30m",
        description="How long a message may wait for its final status before the reconciler "
        "polls Qlara for it, as channel=duration pairs (channels not given keep the default); "
        "while the webhook is silent (no event for 15m) every pending message is polled.",
    )
    reconcile_interval: float = Field(
        60.0, gt=0, le=86400, description="Seconds between the reconciler's rounds."
    )
    max_retries: int = Field(
        8,
        ge=0,
        le=1000,
        description="Retries of a failing event before it becomes a dead letter; while the "
        "ledger is unavailable (down, refusing connections, its disk full) an event is retried "
        "until it is back, at most a minute apart, and never dead-lettered for it.",
    )
    max_deliveries: int = Field(
        3,
        ge=1,
        le=1000,
        description="Times a message may be handed to a worker that dies before it is dead-"
        "lettered as poison.",
    )
    broker_heartbeat_timeout: float = Field(
        15.0,
        gt=0,
        le=3600,
        description="Seconds without a heartbeat after which a worker's unacknowledged "
        "messages are requeued.",
    )
    worker_shutdown_timeout: float = Field(
        6.0,
        gt=0,
        le=3600,
        description="Seconds a stopping worker may spend finishing in-flight events.",
    )
    namespace: str = Field(
        "qlara",
        description="Prefix of every Redis key, so several sidecars can share one Redis.",
    )
    tls_cert_file: Path | None = Field(
        None,
        description="PEM certificate (chain) the receiver serves HTTPS with, set together "
        "with TLS_KEY_FILE. Unset: plain HTTP, for a TLS-terminating proxy in front.",
    )
    tls_key_file: Path | None = Field(
        None,
        description="PEM private key of TLS_CERT_FILE; keep it readable by the sidecar's user "
        "only.",
    )
    openapi: bool = Field(False, description="Serve the OpenAPI schema at /schema.")
    log_level: LogLevel = Field("info", description="Least severe log level written.")
    log_format: LogFormat = Field(
        "auto",
        description="Log line format; auto is JSON when stderr is not a terminal, readable "
        "console output when it is.",
    )
    redis_port: int = Field(
        0, ge=0, le=65535, description="Port of the embedded Redis; 0 picks a free one."
    )
    redis_appendfsync: AppendFsync = Field(
        "always",
        description="fsync policy of the embedded Redis. always: a 200 means the event is on "
        "disk; everysec: up to one second may be lost on a crash.",
    )

    dashboard_host: str = Field(
        "127.0.0.1",
        description="Address the explorer (Streamlit) listens on. Anything but loopback "
        "wants DASHBOARD_PASSWORD.",
    )
    dashboard_port: int = Field(
        8501,
        ge=0,
        le=65535,
        description="TCP port of the explorer, which `up` starts beside the receiver. 0: `up` "
        "starts no explorer.",
    )
    dashboard_password: SecretStr | None = Field(
        None,
        description="Password the explorer asks for, with a user name from DASHBOARD_USERS. "
        "Unset: no sign-in (keep DASHBOARD_HOST on loopback).",
    )
    dashboard_users: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="Comma-separated user names allowed to sign in to the explorer, e.g. "
        "ana,ops. Empty: any name with the password.",
    )
    dashboard_oidc_metadata_url: str | None = Field(
        None,
        description="Single sign-on to the explorer: the OpenID Connect provider's discovery "
        "URL (https://issuer/.well-known/openid-configuration), set with "
        "DASHBOARD_OIDC_CLIENT_ID and DASHBOARD_OIDC_CLIENT_SECRET. The sign-in page then "
        "offers it, beside the password if one is set.",
    )
    dashboard_oidc_client_id: str | None = Field(
        None, description="The explorer's client id at the OpenID Connect provider."
    )
    dashboard_oidc_client_secret: SecretStr | None = Field(
        None,
        description="The explorer's client secret at the OpenID Connect provider (kept in a "
        "file only the sidecar's user can read, DATA_DIR/explorer/secrets.toml).",
    )
    dashboard_oidc_allowed: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="Who may sign in by single sign-on: e-mail addresses (ana@example.com) "
        "and domains (@example.com), comma-separated, matched against the verified e-mail "
        "the provider gives. Empty: anyone the provider signs in.",
    )
    dashboard_public_url: str | None = Field(
        None,
        description="The explorer's address as browsers reach it (https://explorer.example.com"
        "), where the OpenID Connect provider sends them back (+ /oauth2callback; register "
        "that). Unset: http://DASHBOARD_HOST:DASHBOARD_PORT.",
    )
    alert_thresholds: Path | None = Field(
        None,
        description="The YAML file of alert thresholds that `alerts render --thresholds` "
        "reads. The explorer takes its stuck thresholds from the same file (stuck.after), so "
        "its stuck page lists what QlaraMessagesStuck fires on. Unset: the thresholds' "
        "defaults.",
    )
    dashboard_stuck_after: str | None = Field(
        None,
        description="An override of the explorer's stuck thresholds alone, as "
        "channel=duration pairs (5m, 1h, 2d). Unset: stuck.after of ALERT_THRESHOLDS (or its "
        "defaults), the alert's own definition; prefer that.",
    )
    expiry_horizon: str = Field(
        "sms=48h,rcs=48h,whatsapp=24h,other=48h",
        description="How long after its send a message may still get a final status, as "
        "channel=duration pairs (channels not given keep the default). A message sent before "
        "its channel's horizon with none is unresolved (qlara_messages_unresolved), no longer "
        "pending: it stops arming the silence alert on quiet nights.",
    )
    country_labels: str = Field(
        "top:10",
        description="Which destination countries the metrics name in their country label "
        "(qlara_delivery_latency_by_country_seconds): top:N, the N with the most messages "
        "over the last 7 days (re-read hourly), or ISO codes such as IT,FR,DE. Any other "
        "country is other; a message whose phone is not known is unknown. Never the number.",
    )
    dashboard_gap_threshold: str = Field(
        "5m",
        description="A silence of the webhook longer than this is highlighted on the "
        "explorer's webhook health page (5m, 1h ...).",
    )

    @field_validator(*_OPTIONAL_STRINGS, mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("log_level", "log_format", "redis_appendfsync", mode="before")
    @classmethod
    def _lower_case(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("allowed_networks", "trusted_proxies", mode="before")
    @classmethod
    def _parse_networks(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list | tuple):
            return value
        networks: list[Network] = []
        for item in value:
            if isinstance(item, ipaddress.IPv4Network | ipaddress.IPv6Network):
                networks.append(item)
                continue
            try:
                networks.append(ipaddress.ip_network(str(item), strict=False))
            except ValueError:
                raise ValueError(
                    f"{item!r} is not a network; use comma-separated CIDRs such as "
                    "203.0.113.0/24,2001:db8::/32"
                ) from None
        return tuple(networks)

    @field_validator("dashboard_oidc_allowed", mode="before")
    @classmethod
    def _parse_allowed(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip().lower() for part in value.split(",") if part.strip()]
        for item in value if isinstance(value, list | tuple) else ():
            _, at, domain = str(item).rpartition("@")
            if not at or not domain or "." not in domain:
                raise ValueError(
                    f"{item!r} is neither an e-mail address nor a domain; use "
                    "ana@example.com or @example.com"
                )
        return tuple(value) if isinstance(value, list) else value

    @field_validator("dashboard_oidc_metadata_url", "dashboard_public_url")
    @classmethod
    def _absolute_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} must be an absolute http:// or https:// URL")
        return value.rstrip("/") if value is not None else None

    @field_validator("dashboard_users", "allowed_hosts", mode="before")
    @classmethod
    def _parse_users(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("dashboard_stuck_after")
    @classmethod
    def _stuck_after_shape(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        # Only the channels given: the others keep the alert's, read when the explorer starts.
        return ",".join(f"{c}={format_duration(d)}" for c, d in stuck_after(value, {}).items())

    @field_validator("webhook_public_url")
    @classmethod
    def _public_url_https(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("https://"):
            raise ValueError("must start with https:// (Qlara only calls HTTPS URLs)")
        return value

    @field_validator("expiry_horizon", "reconcile_after")
    @classmethod
    def _per_channel_shape(cls, value: str, info: ValidationInfo) -> str:
        # Every channel, the given over the defaults: what the field means, written in full.
        spans = stuck_after(value, _PER_CHANNEL_DEFAULTS[info.field_name or ""])
        return ",".join(f"{c}={format_duration(d)}" for c, d in spans.items())

    @field_validator("country_labels")
    @classmethod
    def _country_labels_shape(cls, value: str) -> str:
        choice = parse_country_labels(value)
        return f"top:{choice}" if isinstance(choice, int) else ",".join(choice)

    @field_validator("qlara_api_limits")
    @classmethod
    def _limits_shape(cls, value: str) -> str:
        second, minute = api_limits(value)
        return f"{second}/s,{minute}/m"

    @field_validator("dashboard_gap_threshold")
    @classmethod
    def _gap_shape(cls, value: str) -> str:
        return format_duration(parse_duration(value))

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(_REDIS_SCHEMES):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("sqlite", "postgresql")):
            raise ValueError(
                "must be a SQLAlchemy URL starting with sqlite:// or postgresql+psycopg://"
            )
        return value

    @field_validator("namespace")
    @classmethod
    def _namespace_shape(cls, value: str) -> str:
        if not _NAMESPACE.match(value):
            raise ValueError(
                "must be 1-64 letters, digits or _ . : - starting with a letter or digit"
            )
        return value

    @field_validator("webhook_token", "read_token", "send_token", "metrics_token")
    @classmethod
    def _token_length(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters (use a long random string)")
        return value

    def secret_values(self) -> tuple[str, ...]:
        """Every secret set on this object, for the log redaction safety net."""
        secrets = (
            self.webhook_token,
            self.read_token,
            self.send_token,
            self.qlara_api_key,
            self.webhook_public_url,
            self.basic_auth_password,
            self.metrics_token,
            self.dashboard_password,
        )
        values = [s.get_secret_value() for s in secrets if s is not None]
        values.extend(self.signing_secrets())
        return tuple(values)

    def signing_secrets(self) -> tuple[str, ...]:
        """The Standard Webhooks secrets, one per rotation step (empty: not checked)."""
        if self.webhook_signing_secrets is None:
            return ()
        text = self.webhook_signing_secrets.get_secret_value()
        return tuple(part for part in text.replace(",", " ").split() if part)

    def to_env(self) -> dict[str, str]:
        """The non-secret settings as ``QLARA_SIDECAR_*`` variables, for child processes.

        Secrets are left out on purpose: a child reads them from its inherited environment
        or from ``DATA_DIR/tokens.json``, never from a command line or a new variable.
        """
        env: dict[str, str] = {}
        for name in type(self).model_fields:
            if name in SECRET_FIELDS:
                continue
            value = getattr(self, name)
            if value is None:
                continue
            env[env_name(name)] = format_value(value)
        return env


SECRET_FIELDS = frozenset(
    {
        "webhook_token",
        "read_token",
        "send_token",
        "basic_auth_password",
        "metrics_token",
        "dashboard_password",
        "webhook_signing_secrets",
        "qlara_api_key",
        "webhook_public_url",
    }
)
"""Fields masked in every output and never passed to a child process explicitly."""


def alert_stuck_after(path: Path | None = None) -> dict[str, timedelta]:
    """The alert QlaraMessagesStuck's ``stuck.after``, by channel: of the thresholds file at
    ``path``, else the defaults. The one definition of "stuck" the explorer reads too.

    Raises ``alerts.ThresholdsError`` naming the file and key.
    """
    from alerts import load_thresholds

    return {c: parse_duration(d) for c, d in load_thresholds(path).stuck.after.items()}


def expiry_horizon(settings: Settings) -> dict[str, timedelta]:
    """EXPIRY_HORIZON by channel (``other``: every channel not documented, and none)."""
    return stuck_after(settings.expiry_horizon, _PER_CHANNEL_DEFAULTS["expiry_horizon"])


def reconcile_after(settings: Settings) -> dict[str, timedelta]:
    """RECONCILE_AFTER by channel (``other``: every channel not documented, and none)."""
    return stuck_after(settings.reconcile_after, _PER_CHANNEL_DEFAULTS["reconcile_after"])


def explorer_stuck_after(settings: Settings) -> dict[str, timedelta]:
    """What the explorer lists as stuck: DASHBOARD_STUCK_AFTER when set, else the alert's."""
    if settings.dashboard_stuck_after is not None:
        return stuck_after(
            settings.dashboard_stuck_after, alert_stuck_after(settings.alert_thresholds)
        )
    return alert_stuck_after(settings.alert_thresholds)


def stuck_after(text: str, base: Mapping[str, timedelta]) -> dict[str, timedelta]:
    """``sms=1h,rcs=6h`` over ``base``: the channels given, and ``base``'s for the others.

    Raises ``ValueError`` naming the pair that cannot be read.
    """
    found = dict(base)
    for pair in (p.strip() for p in text.split(",") if p.strip()):
        channel, _, duration = (part.strip().lower() for part in pair.partition("="))
        if channel not in CHANNELS or not duration:
            raise ValueError(
                f"{pair!r}: use channel=duration pairs, channels {', '.join(CHANNELS)}, "
                "e.g. sms=1h,rcs=6h"
            )
        found[channel] = parse_duration(duration)
    return found


def _set_together(settings: Settings, first: str, second: str) -> None:
    """Raise :class:`SettingsError` naming the one of a pair of settings that is unset while
    the other is set."""
    if (getattr(settings, first) is None) != (getattr(settings, second) is None):
        unset, other = (first, second) if getattr(settings, first) is None else (second, first)
        raise SettingsError(f"{env_name(unset)}: must be set together with {env_name(other)}")


def env_name(field: str) -> str:
    """``port`` -> ``QLARA_SIDECAR_PORT``."""
    return ENV_PREFIX + field.upper()


def flag_name(field: str) -> str:
    """``data_dir`` -> ``--data-dir``."""
    return "--" + field.replace("_", "-")


def require(settings: Settings, field: str) -> str:
    """The value of a setting a command cannot run without; :class:`SettingsError` if unset."""
    value = getattr(settings, field)
    if value is None:
        raise SettingsError(f"{env_name(field)}: must be set for this command")
    return str(value)


def format_value(value: Any) -> str:
    """Render a setting's value the way it is written in the environment."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return ",".join(str(item) for item in value)
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return str(value)


def load_settings(overrides: Mapping[str, Any] | None = None) -> Settings:
    """Read the environment, apply ``overrides`` (from CLI flags, ``None`` values ignored).

    Raises :class:`SettingsError` naming the variable of the first invalid value.
    """
    given = {key: value for key, value in (overrides or {}).items() if value is not None}
    try:
        settings = Settings(**given)
    except ValidationError as exc:
        raise SettingsError(_describe(exc, given)) from None
    except ValueError as exc:
        # pydantic-settings' own source errors (an unreadable variable) are ValueErrors
        # that already name the variable.
        raise SettingsError(str(exc).splitlines()[0]) from None
    _set_together(settings, "basic_auth_user", "basic_auth_password")
    _set_together(settings, "dashboard_oidc_metadata_url", "dashboard_oidc_client_id")
    _set_together(settings, "dashboard_oidc_client_id", "dashboard_oidc_client_secret")
    if settings.webhook_signing_secrets is not None:
        for index, secret in enumerate(settings.signing_secrets(), start=1):
            key = secret.removeprefix("whsec_")
            try:
                # Strict, unlike the verifier's own decoding, which skips what is not base64.
                if not base64.b64decode(key + "=" * (-len(key) % 4), validate=True):
                    raise ValueError("empty")
            except ValueError:  # binascii.Error too; the value is never shown
                raise SettingsError(
                    f"{env_name('webhook_signing_secrets')}: secret {index} is not a base64 "
                    "secret such as whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
                ) from None
        if not settings.signing_secrets():
            raise SettingsError(f"{env_name('webhook_signing_secrets')}: no secret given")
    if settings.alert_thresholds is not None:
        from alerts import ThresholdsError

        try:
            alert_stuck_after(settings.alert_thresholds)
        except ThresholdsError as exc:
            raise SettingsError(f"{env_name('alert_thresholds')}: {exc}") from None
    _set_together(settings, "tls_cert_file", "tls_key_file")
    for name in ("tls_cert_file", "tls_key_file"):
        path = getattr(settings, name)
        if path is not None and not os.access(path, os.R_OK):
            raise SettingsError(f"{env_name(name)}: cannot read {path}")
    if (
        settings.metrics_port != 0
        and settings.metrics_port == settings.port
        and hosts_overlap(settings.host, settings.metrics_host)
    ):
        where = (
            f"when both listen on {settings.host}"
            if settings.host == settings.metrics_host
            else f"while {env_name('metrics_host')} ({settings.metrics_host}) overlaps "
            f"{env_name('host')} ({settings.host})"
        )
        raise SettingsError(
            f"{env_name('metrics_port')}: must differ from {env_name('port')} "
            f"({settings.port}) {where}"
        )
    return settings


_ANY_ADDRESS = ("", "0.0.0.0", "::")  # noqa: S104 - compared, not bound
_LOOPBACK_NAMES = {"localhost": ("127.0.0.1", "::1")}


def hosts_overlap(first: str, second: str) -> bool:
    """Whether listening on ``first`` and on ``second`` could claim the same address (the
    same address, or either one every address), so the same port cannot serve both."""
    a, b = first.strip().lower().strip("[]"), second.strip().lower().strip("[]")
    if a in _ANY_ADDRESS or b in _ANY_ADDRESS:
        return True
    names_a = {_normal_address(x) for x in _LOOPBACK_NAMES.get(a, (a,))}
    names_b = {_normal_address(x) for x in _LOOPBACK_NAMES.get(b, (b,))}
    return bool(names_a & names_b)


def _normal_address(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def _describe(exc: ValidationError, given: Mapping[str, Any]) -> str:
    error = exc.errors()[0]
    loc = error.get("loc") or ("",)
    field = str(loc[0])
    name = env_name(field)
    if field in given:
        name = f"{name} ({flag_name(field)})"
    info = Settings.model_fields.get(field)
    if error["type"] == "value_error":
        reason = str(error["msg"]).removeprefix("Value error, ")
    elif info is not None:
        reason = expectation(info)
    else:
        reason = str(error["msg"])
    return f"{name}: {reason}"


def expectation(info: FieldInfo) -> str:
    """What a valid value of the field looks like, phrased for an error message."""
    annotation = info.annotation
    optional = [arg for arg in get_args(annotation) if arg is not type(None)]
    if len(optional) == 1 and len(get_args(annotation)) == 2:  # X | None: what X expects
        annotation = optional[0]
    if get_origin(annotation) is Literal:
        return "must be one of: " + ", ".join(str(arg) for arg in get_args(annotation))
    low = next((m.ge for m in info.metadata if isinstance(m, Ge)), None)
    above = next((m.gt for m in info.metadata if isinstance(m, Gt)), None)
    high = next((m.le for m in info.metadata if isinstance(m, Le)), None)
    if annotation is bool:
        return "must be true or false"
    if annotation is int:
        if low is not None and high is not None:
            return f"must be an integer between {low} and {high}"
        return "must be an integer"
    if annotation is float:
        if above is not None and high is not None:
            return f"must be a number of seconds greater than {above} and at most {high}"
        return "must be a number"
    return "is not a valid value"
