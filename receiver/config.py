"""The receiver's one typed configuration object, built by the sidecar at its entry point."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ledger import Horizon


@dataclass(frozen=True, slots=True)
class ReceiverConfig:
    """Everything :func:`receiver.create_app` needs.

    ``data_dir`` holds the spool (``data_dir/spool``) and the reject log
    (``data_dir/rejects``). ``webhook_token`` may be ``None`` only when ``allow_no_auth`` is
    set. ``allowed_networks`` and ``trusted_proxies`` are CIDRs; an empty allowlist admits
    any source, and ``X-Forwarded-For`` is believed only when the direct peer is a trusted
    proxy. ``allowed_hosts``, when not empty, are the Host header values answered (Litestar's
    check; health is exempt). ``signing_secrets``, when given, are the Standard Webhooks
    secrets every webhook must be signed with (:mod:`receiver.signatures`). ``send_token`` is
    the bearer token of ``POST /v1/sends`` (``None``: that route refuses every request).
    ``expiry_horizon`` splits the scrape's pending messages: those sent before it are
    ``qlara_messages_unresolved`` (``None``: every one is pending).
    ``metrics_token``,
    when set, is the bearer token
    ``GET /metrics`` wants (unset: the metrics are open, as health is); ``serve_metrics`` off
    leaves ``/metrics`` out of the app (a 404), for when a separate metrics listener serves
    them. Times are in seconds,
    sizes in bytes.
    """

    data_dir: Path
    redis_url: str
    database_url: str
    webhook_token: str | None
    read_token: str
    queue_name: str
    actor_name: str
    namespace: str = "qlara"
    allow_no_auth: bool = False
    basic_auth: tuple[str, str] | None = None
    allowed_networks: tuple[str, ...] = ()
    trusted_proxies: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    signing_secrets: tuple[str, ...] = field(default=(), repr=False)
    send_token: str | None = field(default=None, repr=False)
    expiry_horizon: Horizon | None = None
    max_body_bytes: int = 65536
    redis_timeout: float = 0.25
    enqueue_deadline: float = 0.5
    spool_drain_interval: float = 1.0
    reject_log_max_bytes: int = 8 * 1024 * 1024
    openapi: bool = False
    metrics_token: str | None = None
    serve_metrics: bool = True

    def __post_init__(self) -> None:
        if self.webhook_token is None and not self.allow_no_auth:
            raise ValueError("webhook_token is required unless allow_no_auth is set")
        if self.webhook_token is not None and not self.webhook_token:
            raise ValueError("webhook_token must not be empty")
        if not self.read_token:
            raise ValueError("read_token must not be empty")
        if self.metrics_token is not None and not self.metrics_token:
            raise ValueError("metrics_token must not be empty")
        if self.send_token is not None and not self.send_token:
            raise ValueError("send_token must not be empty")
        if self.max_body_bytes < 1:
            raise ValueError("max_body_bytes must be at least 1")
        for name in ("redis_timeout", "enqueue_deadline", "spool_drain_interval"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be a positive number of seconds")
        if self.reject_log_max_bytes < 4096:
            raise ValueError("reject_log_max_bytes must be at least 4096")

    @property
    def spool_dir(self) -> Path:
        """Where spool segments are written."""
        return self.data_dir / "spool"

    @property
    def rejects_dir(self) -> Path:
        """Where the reject log is written."""
        return self.data_dir / "rejects"


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """Everything :func:`receiver.create_metrics_app` needs.

    ``metrics_dir`` is the multiprocess directory whose values are served (read only).
    ``database_url`` and ``redis_url``, when set, add the ledger's and the broker's
    scrape-time gauges (``None``: left out); the spool under ``data_dir`` (as
    :attr:`ReceiverConfig.spool_dir`) is reported while it exists. ``metrics_token``, when
    set, is the bearer token ``GET /metrics`` wants.
    """

    metrics_dir: Path
    data_dir: Path
    queue_name: str
    namespace: str = "qlara"
    database_url: str | None = None
    redis_url: str | None = None
    redis_timeout: float = 0.25
    metrics_token: str | None = None
    expiry_horizon: Horizon | None = None

    def __post_init__(self) -> None:
        if self.metrics_token is not None and not self.metrics_token:
            raise ValueError("metrics_token must not be empty")
        if not self.redis_timeout > 0:
            raise ValueError("redis_timeout must be a positive number of seconds")

    @property
    def spool_dir(self) -> Path:
        """Where this host's receiver spools (the same place as its ReceiverConfig's)."""
        return self.data_dir / "spool"
