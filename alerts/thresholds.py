"""Every threshold of the alert rules, in one typed object with its defaults.

The rule files under ``alerts/rules/`` are rendered from a :class:`Thresholds` (see
:mod:`alerts.render`); the README's thresholds table is generated from the descriptions
below. To tune a threshold, write only the keys that change in a YAML file::

    near_total:
      min_outcomes: 50
    stuck:
      after:
        sms: 30m

and render with ``qlara-sidecar alerts render --thresholds that.yaml``: every key left out
keeps its default. Durations are Prometheus durations (``90s``, ``15m``, ``1h30m``, ``3d``;
see :mod:`qlara.durations`).
An unknown key or an invalid value raises :class:`ThresholdsError` naming the key.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from qlara import CHANNEL_BUCKETS
from qlara.durations import prometheus_seconds as seconds


class ThresholdsError(ValueError):
    """A thresholds file that cannot be used; the message names the key and the problem."""


def _duration(value: str) -> str:
    seconds(value)
    return value


def _positive_duration(value: str) -> str:
    if seconds(value) <= 0:
        raise ValueError(f"{value!r} must be longer than 0s")
    return value


#: A Prometheus duration, ``0s`` allowed (a ``for`` that waits for nothing).
Duration = Annotated[str, AfterValidator(_duration)]
#: A Prometheus duration longer than 0s (a range window).
Window = Annotated[str, AfterValidator(_positive_duration)]
#: A share between 0 and 1, exclusive of 0.
Share = Annotated[float, Field(gt=0, le=1)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class PerChannel(_Section):
    """One duration per ``channel`` label value."""

    sms: Window = Field(description="SMS")
    rcs: Window = Field(description="RCS")
    whatsapp: Window = Field(description="WhatsApp")
    other: Window = Field(description="any other or missing channel")

    def items(self) -> Iterator[tuple[str, str]]:
        """``(channel, duration)`` in the order of the ``channel`` label's values."""
        for channel in CHANNEL_BUCKETS:
            yield channel, getattr(self, channel)


class BurnWindows(_Section):
    """One pair of a multi-window burn-rate alert: both windows must burn faster than
    ``burn_rate`` times the rate the SLO allows."""

    long: Window
    short: Window
    burn_rate: float = Field(gt=0)

    @model_validator(mode="after")
    def _long_is_longer(self) -> BurnWindows:
        if seconds(self.long) <= seconds(self.short):
            raise ValueError(f"long ({self.long}) must be longer than short ({self.short})")
        return self


class SidecarDown(_Section):
    for_: Duration = Field(
        default="1m",
        alias="for",
        description="How long no scrape of `job` may succeed before QlaraSidecarDown fires.",
    )


class Silence(_Section):
    window: Window = Field(
        default="15m",
        description="QlaraWebhookSilent: how long without any webhook request accepted "
        "counts as silence.",
    )
    last_week_requests: int = Field(
        default=60,
        ge=1,
        description="Requests accepted in the same hour a week earlier from which a silence "
        "pages even with nothing pending (60 an hour: 15 expected in 15 minutes).",
    )


class ChannelSilence(_Section):
    window: Window = Field(
        default="30m",
        description="QlaraWebhookChannelSilent: how long one channel may have no event while "
        "others have some.",
    )
    last_week_events: int = Field(
        default=60,
        ge=1,
        description="Events of the channel in the same hour a week earlier from which its "
        "silence is unexpected.",
    )


class Stuck(_Section):
    after: PerChannel = Field(
        default_factory=lambda: PerChannel(sms="1h", rcs="6h", whatsapp="6h", other="6h"),
        description="QlaraMessagesStuck: age of the oldest message pending (sent, no final "
        "status), per channel.",
    )


class NearTotal(_Section):
    ratio: Share = Field(
        default=0.9,
        description="QlaraDeliveryFailureNearTotal: share of final outcomes that are error or "
        "expired.",
    )
    window: Window = Field(default="5m", description="Window of that share.")
    min_outcomes: int = Field(
        default=20,
        ge=1,
        description="Final outcomes the channel needs in the window (volume guard).",
    )
    for_: Duration = Field(default="2m", alias="for", description="How long it must hold.")


class BudgetBurn(_Section):
    fast: tuple[BurnWindows, ...] = Field(
        default=(
            BurnWindows(long="1h", short="5m", burn_rate=14.4),
            BurnWindows(long="6h", short="30m", burn_rate=6),
        ),
        min_length=1,
        description="QlaraDeliveryFailureBudgetBurn (critical): long/short window pairs and "
        "their burn rate; any pair fires. 14.4 over 1h spends 2% of 30 days' budget.",
    )
    fast_for: Duration = Field(default="2m", description="How long a fast burn must hold.")
    slow: tuple[BurnWindows, ...] = Field(
        default=(
            BurnWindows(long="1d", short="2h", burn_rate=3),
            BurnWindows(long="3d", short="6h", burn_rate=1),
        ),
        min_length=1,
        description="QlaraDeliveryFailureBudgetBurnSlow (warning): the same for slow burns.",
    )
    slow_for: Duration = Field(default="15m", description="How long a slow burn must hold.")
    min_outcomes: int = Field(
        default=50,
        ge=1,
        description="Final outcomes the channel needs in a pair's long window (volume guard).",
    )


class Spike(_Section):
    window: Window = Field(
        default="30m", description="QlaraDeliveryFailureSpike: window of the recent failure share."
    )
    baseline: Window = Field(default="1d", description="Window of the usual failure share.")
    factor: float = Field(default=2, gt=1, description="How many times the usual share is a spike.")
    floor: Share = Field(
        default=0.1,
        description="Recent failure share below which nothing is a spike, whatever the "
        "usual share.",
    )
    min_outcomes: int = Field(
        default=20,
        ge=1,
        description="Final outcomes the channel needs in the window (volume guard).",
    )
    for_: Duration = Field(default="5m", alias="for", description="How long it must hold.")


class Latency(_Section):
    above: PerChannel = Field(
        default_factory=lambda: PerChannel(sms="5m", rcs="15m", whatsapp="15m", other="15m"),
        description="QlaraDeliveryLatencyHigh: p95 of sent -> delivered, per channel.",
    )
    window: Window = Field(default="30m", description="Window of that p95.")
    min_delivered: int = Field(
        default=20, ge=1, description="Deliveries the channel needs in the window (volume guard)."
    )
    for_: Duration = Field(default="10m", alias="for", description="How long it must hold.")


class WebhookDelay(_Section):
    above: Window = Field(
        default="5m",
        description="QlaraWebhookDelayHigh: p95 of event time -> receipt, per channel.",
    )
    window: Window = Field(default="15m", description="Window of that p95.")
    min_events: int = Field(
        default=20, ge=1, description="Events the channel needs in the window (volume guard)."
    )
    for_: Duration = Field(default="10m", alias="for", description="How long it must hold.")


class Rejecting(_Section):
    ratio: Share = Field(
        default=0.05,
        description="QlaraWebhookRejecting: share of webhook requests refused (unauthorized, "
        "invalid, too large, wrong type or method).",
    )
    window: Window = Field(default="5m", description="Window of that share.")
    min_requests: int = Field(
        default=20, ge=1, description="Requests needed in the window (volume guard)."
    )
    for_: Duration = Field(default="10m", alias="for", description="How long it must hold.")


class GapsFilled(_Section):
    min_filled: int = Field(
        default=10,
        ge=1,
        description="QlaraWebhookGapsFilled: final statuses the reconciler found by polling "
        "(the webhook never delivered them) within the window.",
    )
    window: Window = Field(default="1h", description="Window of that count.")
    for_: Duration = Field(default="15m", alias="for", description="How long it must hold.")


class Replaced(_Section):
    for_: Duration = Field(
        default="5m",
        alias="for",
        description="QlaraWebhookReplaced: how long the webhook on file must be another URL "
        "(or none) before it pages.",
    )


class Ack(_Section):
    above: Window = Field(
        default="1s", description="QlaraAckSlow: p99 of the webhook's request -> response time."
    )
    window: Window = Field(default="5m", description="Window of that p99.")
    min_requests: int = Field(
        default=20, ge=1, description="Requests needed in the window (volume guard)."
    )
    for_: Duration = Field(default="5m", alias="for", description="How long it must hold.")


class Backlog(_Section):
    min_messages: int = Field(
        default=100,
        ge=1,
        description="QlaraBacklog: messages on the work queue below which there is no backlog.",
    )
    growth_window: Window = Field(
        default="10m", description="Window of the queue's trend (`deriv`); growing means above 0."
    )
    max_age: Window = Field(
        default="30m",
        description="How long the queue may stay at or above `min_messages` even when it is "
        "not growing (includes `for`).",
    )
    for_: Duration = Field(default="10m", alias="for", description="How long growth must hold.")

    @model_validator(mode="after")
    def _age_outlasts_for(self) -> Backlog:
        if seconds(self.max_age) <= seconds(self.for_):
            raise ValueError(f"max_age ({self.max_age}) must be longer than for ({self.for_})")
        return self


class DeadLetters(_Section):
    window: Window = Field(
        default="10m",
        description="QlaraDeadLetters: fires while a dead letter was written in this window.",
    )


class Spool(_Section):
    for_: Duration = Field(
        default="5m",
        alias="for",
        description="QlaraSpoolInUse: how long events may wait in a receiver's spool.",
    )


class Thresholds(_Section):
    """Every threshold, window and link of the alert rules. Defaults are the shipped rules'."""

    job: str = Field(
        default="qlara-sidecar",
        min_length=1,
        description="Prometheus `job` label of the sidecar's scrape targets (QlaraSidecarDown "
        "reads `up{job=...}`).",
    )
    slo: float = Field(
        default=0.95,
        gt=0,
        lt=1,
        description="Delivery SLO: the share of final outcomes (delivered, error, expired) "
        "that are delivered. The error budget is 1 - slo.",
    )
    explorer_url: str = Field(
        default="http://127.0.0.1:8501",
        pattern=r"^https?://",
        description="Base URL of the delivery explorer; each alert's dashboard_url opens a "
        "page of it.",
    )
    runbook_url: str = Field(
        default="https://git.example.com/qlara-sidecar/-/blob/main/alerts/runbooks",
        pattern=r"^https?://",
        description="Where alerts/runbooks/ can be read; runbook_url is this plus "
        "/<alert>.md. Point it at your copy of the repository.",
    )
    sidecar_down: SidecarDown = Field(default_factory=SidecarDown)
    silence: Silence = Field(default_factory=Silence)
    channel_silence: ChannelSilence = Field(default_factory=ChannelSilence)
    stuck: Stuck = Field(default_factory=Stuck)
    near_total: NearTotal = Field(default_factory=NearTotal)
    budget_burn: BudgetBurn = Field(default_factory=BudgetBurn)
    spike: Spike = Field(default_factory=Spike)
    latency: Latency = Field(default_factory=Latency)
    webhook_delay: WebhookDelay = Field(default_factory=WebhookDelay)
    rejecting: Rejecting = Field(default_factory=Rejecting)
    gaps_filled: GapsFilled = Field(default_factory=GapsFilled)
    replaced: Replaced = Field(default_factory=Replaced)
    ack: Ack = Field(default_factory=Ack)
    backlog: Backlog = Field(default_factory=Backlog)
    dead_letters: DeadLetters = Field(default_factory=DeadLetters)
    spool: Spool = Field(default_factory=Spool)

    @property
    def error_budget(self) -> float:
        """The share of outcomes the SLO lets fail, ``1 - slo``, rounded to 6 places."""
        return round(1 - self.slo, 6)


def load_thresholds(path: Path | None = None) -> Thresholds:
    """The defaults, with the keys of the YAML file at ``path`` (if any) replacing theirs.

    Raises :class:`ThresholdsError` naming the key of the first invalid or unknown value,
    or the file when it cannot be read as a YAML mapping.
    """
    if path is None:
        return Thresholds()
    try:
        given = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ThresholdsError(f"{path}: cannot read it as YAML: {exc}") from None
    if not isinstance(given, Mapping):
        raise ThresholdsError(f"{path}: must be a mapping of threshold keys")
    return thresholds_from(given, source=str(path))


def thresholds_from(given: Mapping[str, Any], source: str = "thresholds") -> Thresholds:
    """The defaults overridden by ``given`` (nested keys as in the YAML file)."""
    merged = _merge(Thresholds().model_dump(by_alias=True), given)
    try:
        return Thresholds.model_validate(merged)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        raise ThresholdsError(f"{source}: {key}: {message}") from None


def _merge(defaults: dict[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(defaults)
    for key, value in given.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def threshold_rows() -> Iterator[tuple[str, str, str]]:
    """``(key, default, description)`` for every threshold, in the order of the model, nested
    keys dotted (``near_total.ratio``)."""
    yield from _rows(Thresholds(), "")


def _rows(section: BaseModel, prefix: str) -> Iterator[tuple[str, str, str]]:
    for name, info in type(section).model_fields.items():
        key = prefix + (info.alias or name)
        value = getattr(section, name)
        if isinstance(value, PerChannel):
            for index, (channel, duration) in enumerate(value.items()):
                label = PerChannel.model_fields[channel].description
                text = info.description if index == 0 else f"The same, for {label}."
                yield f"{key}.{channel}", duration, text or ""
        elif isinstance(value, _Section):
            yield from _rows(value, key + ".")
        elif isinstance(value, tuple):
            text = ", ".join(f"{w.long}/{w.short} x{w.burn_rate:g}" for w in value)
            yield key, text, info.description or ""
        else:
            yield (
                key,
                f"{value:g}" if isinstance(value, float) else str(value),
                (info.description or ""),
            )


def markdown_table() -> str:
    """The thresholds reference as a Markdown table (key, default, meaning), for the README."""
    rows = ["| threshold | default | meaning |", "|---|---|---|"]
    for key, default, description in threshold_rows():
        rows.append(f"| `{key}` | `{default}` | {description.replace('|', chr(92) + '|')} |")
    return "\n".join(rows)
