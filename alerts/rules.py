"""The alert rules and recording rules, as Prometheus rule groups built from :class:`Thresholds`.

Every alert carries the labels ``severity`` (``critical`` pages, ``warning`` goes to chat,
``none`` is the Watchdog) and ``service="qlara-sidecar"``, and the annotations ``summary``,
``description`` (with the numbers), ``runbook_url`` and ``dashboard_url``
(:mod:`alerts.links`).

Failures are ``error`` and ``expired`` events over all final outcomes (``delivered``,
``error``, ``expired``) of ``qlara_events_total``; ``sent``, ``read`` and the other
intermediate statuses are not outcomes. The recording rules hold, per channel, the outcome
rate and the failure share over every window an alert reads, and the hourly event volume.
Gauges that every scrape target reports alike (the ledger's and the queue's) are read with
``max``, counters are summed over targets.

"A week earlier" reads the raw counters with ``offset 1w``, not a recorded series, so it
works as soon as Prometheus holds a week of the sidecar's metrics, whenever the rules were
installed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alerts.links import Page, dashboard_url, runbook_url
from alerts.thresholds import PerChannel, Thresholds
from metrics.definitions import DELIVERY_OUTCOMES, ERROR_STATUSES, REQUEST_OUTCOMES
from qlara.durations import format_prometheus as format_duration
from qlara.durations import prometheus_seconds as seconds

Rule = dict[str, Any]
Group = dict[str, Any]

SERVICE = "qlara-sidecar"

#: Request outcomes that mean Qlara's call was taken (queued, or spooled for later).
_TAKEN = ("accepted", "spooled")
#: Request outcomes that mean the caller was refused: credentials, payload, size, type,
#: method. ``unavailable`` (our own 503) is not the caller's doing.
_REFUSED = tuple(o for o in REQUEST_OUTCOMES if o not in {*_TAKEN, "unavailable"})

_FAILED = tuple(s for s in DELIVERY_OUTCOMES if s in ERROR_STATUSES)
_OUTCOMES = f'qlara_events_total{{status=~"{"|".join(DELIVERY_OUTCOMES)}"}}'
_FAILURES = f'qlara_events_total{{status=~"{"|".join(_FAILED)}"}}'
_TAKEN_REQUESTS = f'qlara_webhook_requests_total{{outcome=~"{"|".join(_TAKEN)}"}}'
_REFUSED_REQUESTS = f'qlara_webhook_requests_total{{outcome=~"{"|".join(_REFUSED)}"}}'
_PENDING = "sum(max by (channel) (qlara_messages_pending))"
_WORK_QUEUE = 'qlara_queue_messages{queue="work"}'

#: The hourly event volume per channel, recorded for dashboards.
HOURLY_VOLUME = "channel:qlara_events:increase1h"


def outcomes_rate(window: str) -> str:
    """Name of the recorded rate of final outcomes per channel over ``window``."""
    return f"channel:qlara_delivery_outcomes:rate{window}"


def failure_ratio(window: str) -> str:
    """Name of the recorded failure share per channel over ``window``."""
    return f"channel:qlara_delivery_failures:ratio_rate{window}"


def ratio_windows(t: Thresholds) -> list[str]:
    """Every window a failure alert reads a failure share over, shortest first."""
    windows = {t.near_total.window, t.spike.window, t.spike.baseline}
    for pair in (*t.budget_burn.fast, *t.budget_burn.slow):
        windows.update((pair.long, pair.short))
    return sorted(windows, key=seconds)


def groups(t: Thresholds) -> dict[str, list[Group]]:
    """The rule groups of each rule file, by file name."""
    return {
        "recording.yml": [{"name": "qlara-sidecar.recording", "rules": recording_rules(t)}],
        "webhook.yml": [{"name": "qlara-sidecar.webhook", "rules": webhook_alerts(t)}],
        "delivery.yml": [{"name": "qlara-sidecar.delivery", "rules": delivery_alerts(t)}],
    }


def recording_rules(t: Thresholds) -> list[Rule]:
    """Outcome rate and failure share per channel over each window, and the hourly volume.

    A channel with no outcome in a window has no share (0/0 is NaN, which no threshold
    crosses): an unused channel never alerts.
    """
    rules: list[Rule] = []
    for window in ratio_windows(t):
        rules.append(
            {
                "record": outcomes_rate(window),
                "expr": f"sum by (channel) (rate({_OUTCOMES}[{window}]))",
            }
        )
        rules.append(
            {
                "record": failure_ratio(window),
                "expr": f"sum by (channel) (rate({_FAILURES}[{window}]))\n"
                f"/\n{outcomes_rate(window)}",
            }
        )
    rules.append(
        {"record": HOURLY_VOLUME, "expr": "sum by (channel) (increase(qlara_events_total[1h]))"}
    )
    return rules


def webhook_alerts(t: Thresholds) -> list[Rule]:
    """Is the sidecar up, is Qlara calling, is the webhook answering, is work flowing."""
    silence, quiet = t.silence, t.channel_silence
    delay, rejecting, ack, backlog = t.webhook_delay, t.rejecting, t.ack, t.backlog
    gaps = t.gaps_filled
    stuck_window = format_duration(seconds(backlog.max_age) - seconds(backlog.for_))
    up = f'up{{job="{t.job}"}}'
    return [
        _alert(
            t,
            "QlaraSidecarDown",
            f"max by (job) ({up}) == 0\nor\nabsent({up})",
            severity="critical",
            for_=t.sidecar_down.for_,
            summary="No qlara-sidecar scrape target is up",
            description=f"No target of job {{{{ $labels.job }}}} has been scraped successfully "
            f"for {t.sidecar_down.for_}: the sidecar is down or unreachable, so webhook "
            "events may be refused and no other qlara-sidecar alert can fire.",
            page="webhook_health",
            window="1h",
        ),
        _alert(
            t,
            "QlaraWebhookSilent",
            f"({_PENDING} or on () vector(0))\n"
            "and on () (\n"
            f"  {_PENDING} > 0\n"
            f"  or on () sum(increase({_TAKEN_REQUESTS}[1h] offset 1w))"
            f" >= {silence.last_week_requests}\n"
            ")\n"
            f"and on () sum(increase({_TAKEN_REQUESTS}[{silence.window}])) == 0",
            severity="critical",
            summary="Qlara has stopped calling the webhook",
            description=f"No webhook request has been accepted for {silence.window} while "
            '{{ $value | printf "%.0f" }} messages are pending (sent, no final status)'
            + _with_query(
                f"sum(increase({_TAKEN_REQUESTS}[1h] offset 1w))",
                '; the same hour last week had {{ . | first | value | printf "%.0f" }} requests',
            )
            + ". Qlara is not calling, or cannot reach the webhook.",
            page="webhook_health",
            window=silence.window,
        ),
        _alert(
            t,
            "QlaraWebhookChannelSilent",
            f"sum by (channel) (increase(qlara_events_total[1h] offset 1w))"
            f" >= {quiet.last_week_events}\n"
            f"and on (channel) sum by (channel) (increase(qlara_events_total[{quiet.window}]))"
            " == 0\n"
            f"and on () sum(increase(qlara_events_total[{quiet.window}])) > 0",
            severity="warning",
            summary="No {{ $labels.channel }} event while other channels have some",
            description=f"No {{{{ $labels.channel }}}} event for {quiet.window} while other "
            "channels have events; the same hour last week it had "
            '{{ $value | printf "%.0f" }}.',
            page="webhook_health",
            window=quiet.window,
            by_channel=True,
        ),
        _alert(
            t,
            "QlaraWebhookDelayHigh",
            f"histogram_quantile(0.95, sum by (channel, le) "
            f"(rate(qlara_webhook_delay_seconds_bucket[{delay.window}])))\n"
            f"  > {_num(seconds(delay.above))}\n"
            f"and on (channel) sum by (channel) "
            f"(increase(qlara_webhook_delay_seconds_count[{delay.window}])) >= {delay.min_events}",
            severity="warning",
            for_=delay.for_,
            summary="Qlara reports {{ $labels.channel }} events late",
            description=f"p95 of event time -> receipt on {{{{ $labels.channel }}}} is "
            f"{{{{ $value | humanizeDuration }}}} over the last {delay.window} "
            f"(threshold {delay.above}).",
            page="webhook_health",
            window=delay.window,
            by_channel=True,
        ),
        _alert(
            t,
            "QlaraWebhookRejecting",
            f"sum(rate({_REFUSED_REQUESTS}[{rejecting.window}]))\n"
            f"/ sum(rate(qlara_webhook_requests_total[{rejecting.window}]))"
            f" > {_num(rejecting.ratio)}\n"
            f"and on () sum(increase(qlara_webhook_requests_total[{rejecting.window}]))"
            f" >= {rejecting.min_requests}",
            severity="warning",
            for_=rejecting.for_,
            summary="The webhook refuses many requests",
            description="{{ $value | humanizePercentage }} of webhook requests over the last "
            f"{rejecting.window} were refused (threshold {_percent(rejecting.ratio)})"
            + _range_query(
                f"sum by (outcome) (increase({_REFUSED_REQUESTS}[{rejecting.window}])) > 0",
                ": {{ range $i, $s := . }}{{ if $i }}, {{ end }}{{ $s.Labels.outcome }} "
                '{{ $s.Value | printf "%.0f" }}{{ end }}',
            )
            + ". A token or configuration mismatch, or someone probing the URL.",
            page="webhook_health",
            window=rejecting.window,
        ),
        _alert(
            t,
            "QlaraWebhookReplaced",
            'max by (reason) (qlara_webhook_registration_ok{reason=~"replaced|none"}) == 0',
            severity="critical",
            for_=t.replaced.for_,
            summary="Qlara no longer calls this sidecar",
            description="The webhook URL Qlara has on file is "
            '{{ if eq $labels.reason "none" }}gone: nothing is registered'
            "{{ else }}another URL than this sidecar's{{ end }}. One URL per account: someone "
            "registered another, and every event now goes there.",
            page="webhook_health",
            window=t.replaced.for_,
        ),
        _alert(
            t,
            "QlaraWebhookGapsFilled",
            f"sum(increase(qlara_reconcile_filled_total[{gaps.window}])) >= {gaps.min_filled}",
            severity="warning",
            for_=gaps.for_,
            summary="Polling keeps finding statuses the webhook never delivered",
            description='{{ $value | printf "%.0f" }} final statuses over the last '
            f"{gaps.window} were found by polling Qlara's status API because the webhook "
            "never delivered them (threshold "
            f"{gaps.min_filled}). Events are being lost between Qlara and the sidecar.",
            page="webhook_health",
            window=gaps.window,
        ),
        _alert(
            t,
            "QlaraAckSlow",
            f"histogram_quantile(0.99, sum by (le) "
            f"(rate(qlara_webhook_ack_seconds_bucket[{ack.window}])))"
            f" > {_num(seconds(ack.above))}\n"
            f"and on () sum(increase(qlara_webhook_ack_seconds_count[{ack.window}]))"
            f" >= {ack.min_requests}",
            severity="critical",
            for_=ack.for_,
            summary="The webhook answers slowly",
            description="p99 of the webhook's response time is "
            f"{{{{ $value | humanizeDuration }}}} over the last {ack.window} (threshold "
            f"{ack.above}); Qlara gives up after 5s and retries, so requests pile up.",
            page="webhook_health",
            window=ack.window,
        ),
        _alert(
            t,
            "QlaraBacklog",
            "(\n"
            f"  max({_WORK_QUEUE}) >= {backlog.min_messages}\n"
            f"  and on () max(deriv({_WORK_QUEUE}[{backlog.growth_window}])) > 0\n"
            ")\n"
            f"or on () max(min_over_time({_WORK_QUEUE}[{stuck_window}]))"
            f" >= {backlog.min_messages}",
            severity="warning",
            for_=backlog.for_,
            summary="Events wait on the work queue",
            description='{{ $value | printf "%.0f" }} messages wait on the work queue: it has '
            f"grown for {backlog.for_} or held at least {backlog.min_messages} for "
            f"{backlog.max_age}. The workers are down, too few or slowed by the ledger.",
            page="webhook_health",
            window=backlog.max_age,
        ),
        _alert(
            t,
            "QlaraDeadLetters",
            f"sum by (reason) (increase(qlara_dead_letters_total[{t.dead_letters.window}])) > 0",
            severity="warning",
            summary="Events became dead letters ({{ $labels.reason }})",
            description=f"New dead letters ({{{{ $labels.reason }}}}) in the last "
            f'{t.dead_letters.window}: {{{{ $value | printf "%.0f" }}}}'
            + _with_query(
                'max(qlara_queue_messages{queue="dead_letter"})',
                '; {{ . | first | value | printf "%.0f" }} dead letters wait for a redrive',
            )
            + ". Their events are not in the ledger until they are redriven.",
            page="webhook_health",
            window=t.dead_letters.window,
        ),
        _alert(
            t,
            "QlaraSpoolInUse",
            "max by (instance) (qlara_spool_events) > 0",
            severity="warning",
            for_=t.spool.for_,
            summary="Events wait in the spool of {{ $labels.instance }}",
            description='{{ $value | printf "%.0f" }} events have waited in the local spool '
            f"of {{{{ $labels.instance }}}} for at least {t.spool.for_}: the receiver cannot "
            "hand them to Redis. They are safe on disk and drain by themselves once Redis "
            "answers.",
            page="webhook_health",
            window="1h",
        ),
        _alert(
            t,
            "Watchdog",
            "vector(1)",
            severity="none",
            summary="The alerting pipeline works",
            description="Always firing, so that a dead man's switch outside this Prometheus "
            "and Alertmanager notices when alerts stop arriving.",
            page="overview",
            window="1h",
        ),
    ]


def delivery_alerts(t: Thresholds) -> list[Rule]:
    """Are messages reaching their recipients: failure shares, stuck and slow messages."""
    near, burn, spike, latency = t.near_total, t.budget_burn, t.spike, t.latency
    budget = t.error_budget
    rules: list[Rule] = []
    rules.extend(
        _per_channel(
            t.stuck.after,
            lambda channel, after: _alert(
                t,
                "QlaraMessagesStuck",
                "max by (channel) "
                f'(qlara_messages_pending_oldest_age_seconds{{channel="{channel}"}})'
                f" > {_num(seconds(after))}",
                severity="warning",
                summary="{{ $labels.channel }} messages have had no final status for long",
                description="The oldest {{ $labels.channel }} message still pending was sent "
                f"{{{{ $value | humanizeDuration }}}} ago (threshold {after})"
                + _with_query(
                    f'max(qlara_messages_pending{{channel="{channel}"}})',
                    '; {{ . | first | value | printf "%.0f" }} messages are pending',
                )
                + ".",
                page="stuck_messages",
                window=after,
                by_channel=True,
                channel=channel,
            ),
        )
    )
    rules.append(
        _alert(
            t,
            "QlaraDeliveryFailureNearTotal",
            f"{failure_ratio(near.window)} > {_num(near.ratio)}\n"
            f"and on (channel) {_volume(near.window)} >= {near.min_outcomes}",
            severity="critical",
            for_=near.for_,
            summary="Almost every {{ $labels.channel }} message fails",
            description="{{ $value | humanizePercentage }} of {{ $labels.channel }} final "
            f"outcomes over the last {near.window} were error or expired"
            + _outcomes_note(near.window)
            + f" (threshold {_percent(near.ratio)}).",
            page="failures",
            window=near.window,
            by_channel=True,
        )
    )
    for name, severity, pairs, for_, kind in (
        ("QlaraDeliveryFailureBudgetBurn", "critical", burn.fast, burn.fast_for, "fast"),
        ("QlaraDeliveryFailureBudgetBurnSlow", "warning", burn.slow, burn.slow_for, "slow"),
    ):
        branches = [
            "(\n"
            f"  {failure_ratio(p.long)} / {_num(budget)} > {_num(p.burn_rate)}\n"
            f"  and on (channel) {failure_ratio(p.short)} / {_num(budget)}"
            f" > {_num(p.burn_rate)}\n"
            f"  and on (channel) {_volume(p.long)} >= {burn.min_outcomes}\n"
            ")"
            for p in pairs
        ]
        rule_of = " or ".join(f"{_num(p.burn_rate)}x over {p.long} and {p.short}" for p in pairs)
        rules.append(
            _alert(
                t,
                name,
                "\nor\n".join(branches),
                severity=severity,
                for_=for_,
                summary=f"{{{{ $labels.channel }}}} failures burn the error budget ({kind})",
                description="{{ $labels.channel }} deliveries fail "
                '{{ $value | printf "%.1f" }} times as fast as the '
                f"{_percent(t.slo)} delivery SLO allows ({_percent(budget)} of outcomes); "
                f"a {kind} burn is {rule_of}.",
                page="failures",
                window=pairs[0].long,
                by_channel=True,
            )
        )
    rules.append(
        _alert(
            t,
            "QlaraDeliveryFailureSpike",
            f"{failure_ratio(spike.window)} > {_num(spike.factor)} * "
            f"{failure_ratio(spike.baseline)}\n"
            f"and {failure_ratio(spike.window)} > {_num(spike.floor)}\n"
            f"and on (channel) {_volume(spike.window)} >= {spike.min_outcomes}",
            severity="warning",
            for_=spike.for_,
            summary="{{ $labels.channel }} failures spike",
            description="{{ $value | humanizePercentage }} of {{ $labels.channel }} outcomes "
            f"over the last {spike.window} failed, more than {_num(spike.factor)} times the "
            f"last {spike.baseline}'s"
            + _with_query(
                f'printf `{failure_ratio(spike.baseline)}{{channel="%s"}}` $labels.channel',
                " ({{ . | first | value | humanizePercentage }})",
                expression=True,
            )
            + f" and above {_percent(spike.floor)}.",
            page="failures",
            window=spike.window,
            by_channel=True,
        )
    )
    rules.extend(
        _per_channel(
            latency.above,
            lambda channel, above: _alert(
                t,
                "QlaraDeliveryLatencyHigh",
                "histogram_quantile(0.95, sum by (channel, le) (rate("
                f'qlara_delivery_latency_seconds_bucket{{channel="{channel}", '
                f'outcome="delivered"}}[{latency.window}])))\n'
                f"  > {_num(seconds(above))}\n"
                "and on (channel) sum by (channel) (increase("
                f'qlara_delivery_latency_seconds_count{{channel="{channel}", '
                f'outcome="delivered"}}[{latency.window}])) >= {latency.min_delivered}',
                severity="warning",
                for_=latency.for_,
                summary="{{ $labels.channel }} messages take long to be delivered",
                description="p95 of sent -> delivered on {{ $labels.channel }} is "
                f"{{{{ $value | humanizeDuration }}}} over the last {latency.window} "
                f"(threshold {above}).",
                page="overview",
                window=latency.window,
                by_channel=True,
                channel=channel,
            ),
        )
    )
    return rules


def _alert(
    t: Thresholds,
    name: str,
    expr: str,
    *,
    severity: str,
    summary: str,
    description: str,
    page: Page,
    window: str,
    for_: str = "0s",
    by_channel: bool = False,
    channel: str | None = None,
) -> Rule:
    """An alerting rule; ``channel`` labels one rule of several that share a name (one
    threshold per channel), so that each has a label set of its own."""
    rule: Rule = {"alert": name, "expr": expr}
    if seconds(for_) > 0:
        rule["for"] = for_
    rule["labels"] = {"severity": severity, "service": SERVICE}
    if channel is not None:
        rule["labels"]["channel"] = channel
    rule["annotations"] = {
        "summary": summary,
        "description": description,
        "runbook_url": runbook_url(t.runbook_url, name),
        "dashboard_url": dashboard_url(t.explorer_url, page, window, by_channel=by_channel),
    }
    return rule


def _per_channel(durations: PerChannel, make: Callable[[str, str], Rule]) -> list[Rule]:
    """One rule per channel (same alert name), each with its own threshold."""
    return [make(channel, duration) for channel, duration in durations.items()]


def _volume(window: str) -> str:
    """Final outcomes per channel over ``window``, from the recorded rate."""
    return f"{outcomes_rate(window)} * {_num(seconds(window))}"


def _outcomes_note(window: str) -> str:
    return _with_query(
        f"printf `{_volume(window).replace(' * ', '{channel=%q} * ', 1)}` $labels.channel",
        ' ({{ . | first | value | printf "%.0f" }} outcomes)',
        expression=True,
    )


def _with_query(query: str, text: str, *, expression: bool = False) -> str:
    """``text`` with the first sample of ``query`` as ``.``, when the query returns any.

    ``query`` is PromQL, or with ``expression`` a template expression that makes it.
    """
    source = query if expression else f"`{query}`"
    pipeline = f"{source} | query" if expression else f"query {source}"
    return f"{{{{ with {pipeline} }}}}{text}{{{{ end }}}}"


def _range_query(query: str, text: str) -> str:
    """``text`` with every sample of ``query`` as ``.``, when the query returns any."""
    return f"{{{{ with query `{query}` }}}}{text}{{{{ end }}}}"


def _num(value: float) -> str:
    """A number as PromQL reads it, without float noise (``0.05``, ``14.4``, ``3600``)."""
    return f"{value:.10g}"


def _percent(share: float) -> str:
    return f"{share * 100:.10g}%"
