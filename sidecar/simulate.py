"""`qlara-sidecar simulate` and `qlara-sidecar demo`: post realistic Qlara traffic to a sidecar.

The traffic itself (what is posted, when, and the exact count of it) is
:mod:`simulator`'s; this module posts it: an :class:`httpx.AsyncClient` with at most
``concurrency`` requests in flight, paced by the traffic's own timing and capped at ``rate``
events a second. A request answered other than 200 is retried like Qlara retries (a few
times, with backoff, honouring ``Retry-After``); only what got a 200 is counted in the summary.
A 401, 403 or 404 stops the run at once: the URL or the token is wrong, and retrying will not
mend it.

Ctrl-C or SIGTERM stops sending, gives requests in flight a few seconds, and still prints
the summary. ``silence_after`` stops sending but keeps the process alive until ``duration``
ends (or a signal), so that silence alerts can fire.

`demo` runs `up` in this process and, beside it in threads, the gentle endless simulation
and a fake Qlara API (:mod:`qlara_api.fake`) that the reconciler polls for the final statuses
the simulation "loses".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import click
import httpx
from pydantic import SecretStr
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from sidecar.settings import Settings, env_name
from sidecar.tokens import TokenFileError, resolve_tokens
from sidecar.urls import VERIFY_OWN_RECEIVER, metrics_url, receiver_url
from simulator import TimedRequest, TrafficOptions, TrafficSummary, live_traffic

ProgressMode = Literal["bar", "lines", "none"]

#: Seconds requests in flight may take to be answered once a stop is asked for.
STOP_GRACE_S = 3.0
#: Longest wait between two attempts of one request, whatever ``Retry-After`` says.
MAX_BACKOFF_S = 5.0
#: Answers that no retry will mend: the URL or the credentials are wrong.
_REFUSALS = frozenset({401, 403, 404})
_JSON = {"Content-Type": "application/json"}

EXIT_OK = 0
EXIT_REFUSED = 1


class WebhookRefused(Exception):
    """The webhook answered 401, 403 or 404: a wrong URL or token, not a passing failure."""


@dataclass(frozen=True, slots=True)
class SendOptions:
    """How to post: where, how fast at most, for how long, and how to show progress.

    ``rate`` caps events a second (a burst of up to one second's worth is allowed);
    ``duration`` and ``silence_after`` are seconds from the start (``None``: no limit);
    ``retries`` is attempts after the first, ``timeout`` seconds per attempt, and
    ``backoff_s`` the wait before the first retry, doubled for each next one (a
    ``Retry-After`` answer wins; never more than :data:`MAX_BACKOFF_S`). ``verify``: check
    an HTTPS webhook's certificate (not for this machine's own sidecar, see
    :data:`sidecar.urls.VERIFY_OWN_RECEIVER`).
    """

    url: str
    rate: float
    duration: float | None = None
    silence_after: float | None = None
    concurrency: int = 16
    retries: int = 4
    timeout: float = 10.0
    backoff_s: float = 0.5
    progress: ProgressMode = "lines"
    progress_every_s: float = 5.0
    messages: int | None = None
    verify: bool = True
    #: ``POST /v1/sends`` and its token, for the sends the application reports.
    sends_url: str | None = None
    send_token: str | None = field(default=None, repr=False)
    #: The fake Qlara's base URL, told the truth of every message whose final was dropped.
    qlara_url: str | None = None


class _TokenBucket:
    """Events a second, with a one-second burst; a request larger than the bucket borrows."""

    def __init__(self, rate: float, now: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.updated = now

    def reserve(self, events: int, now: float) -> float:
        """Take ``events`` tokens; return the seconds to wait before sending them."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        wait = 0.0 if self.tokens >= 0 else -self.tokens / self.rate
        self.tokens -= events
        return wait


class Sender:
    """Posts timed requests to the webhook and counts the acknowledged ones in ``summary``.

    ``stop`` ends sending when set (from a signal handler, or another thread through
    ``loop.call_soon_threadsafe``). ``report`` is called about every
    ``options.progress_every_s`` seconds with the summary so far; by default it draws the
    progress ``options.progress`` asks for, on stderr. ``transport`` replaces the network
    (a stand-in webhook, in tests).
    """

    def __init__(
        self,
        options: SendOptions,
        summary: TrafficSummary,
        stop: asyncio.Event,
        report: Callable[[TrafficSummary, float], None] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.options = options
        self._transport = transport
        self.summary = summary
        self._stop_event = stop
        self._report = report
        self._tasks: set[asyncio.Task[None]] = set()
        self._refused: int | None = None

    async def run(self, requests: Iterator[TimedRequest]) -> None:
        """Post ``requests`` until they end, a limit is reached or ``stop`` is set.

        Raises :class:`WebhookRefused` when the webhook answered 401, 403 or 404.
        """
        loop = asyncio.get_running_loop()
        o = self.options
        self.summary.started_at = datetime.now(UTC)
        self._t0 = loop.time()
        self._slots = asyncio.Semaphore(o.concurrency)
        self._bucket = _TokenBucket(o.rate, self._t0)
        limits = httpx.Limits(
            max_connections=o.concurrency, max_keepalive_connections=o.concurrency
        )
        display = _Display(o, self.summary) if self._report is None else None
        reporter = asyncio.create_task(self._report_every(display))
        try:
            async with httpx.AsyncClient(
                limits=limits, timeout=o.timeout, transport=self._transport, verify=o.verify
            ) as client:
                await self._dispatch(client, requests)
                await self._drain()
            if self._refused is None and o.silence_after is not None:
                # Silent on purpose: the process stays up so silence alerts have time to fire.
                end = None if o.duration is None else self._t0 + o.duration
                await self._sleep_until(end)
        finally:
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter
            self.summary.ended_at = datetime.now(UTC)
            if display is not None:
                display.close(self._elapsed())
        if self._refused is not None:
            raise WebhookRefused(
                f"the webhook answered {self._refused}: check the URL and its token "
                f"({_masked(o.url)})"
            )

    def _elapsed(self) -> float:
        return asyncio.get_running_loop().time() - self._t0

    def _sending_ends(self) -> float | None:
        limits = [x for x in (self.options.duration, self.options.silence_after) if x is not None]
        return min(limits) if limits else None

    async def _dispatch(self, client: httpx.AsyncClient, requests: Iterator[TimedRequest]) -> None:
        loop = asyncio.get_running_loop()
        ends = self._sending_ends()
        for request in requests:
            if ends is not None and (request.at >= ends or self._elapsed() >= ends):
                return
            if not await self._sleep_until(self._t0 + request.at):
                return
            wait = self._bucket.reserve(len(request.events), loop.time())
            if wait > 0 and not await self._sleep_until(loop.time() + wait):
                return
            await self._slots.acquire()
            if self._stop_event.is_set():
                self._slots.release()
                return
            task = asyncio.create_task(self._post(client, request))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _drain(self) -> None:
        """Wait for requests in flight; after a stop, for ``STOP_GRACE_S`` at most."""
        pending = set(self._tasks)
        while pending and not self._stop_event.is_set():
            _, pending = await asyncio.wait(pending, timeout=0.2)
        if pending:
            _, pending = await asyncio.wait(pending, timeout=STOP_GRACE_S)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _sleep_until(self, deadline: float | None) -> bool:
        """Sleep until ``deadline`` (loop time; ``None``: forever); ``False`` if stopped first."""
        if self._stop_event.is_set():
            return False
        delay = None if deadline is None else deadline - asyncio.get_running_loop().time()
        if delay is not None and delay <= 0:
            return True
        try:
            await asyncio.wait_for(self._stop_event.wait(), delay)
        except TimeoutError:
            return True
        return False

    async def _post(self, client: httpx.AsyncClient, request: TimedRequest) -> None:
        loop = asyncio.get_running_loop()
        try:
            for attempt in range(self.options.retries + 1):
                retry_after: float | None = None
                try:
                    url, headers = self._where(request)
                    response = await client.post(url, content=request.body, headers=headers)
                    status: int | None = response.status_code
                    retry_after = _retry_after(response)
                except httpx.TransportError:
                    status = None  # no answer: Qlara cannot know it arrived, so it resends
                self.summary.requests += 1
                if status == 200:
                    self.summary.acknowledged(request)
                    return
                self.summary.non_200 += 1
                if status in _REFUSALS:
                    self._refused = status
                    self._stop_event.set()
                    break
                if attempt == self.options.retries:
                    break
                backoff = (
                    retry_after if retry_after is not None else self.options.backoff_s * 2**attempt
                )
                if not await self._sleep_until(loop.time() + min(backoff, MAX_BACKOFF_S)):
                    break
            self.summary.given_up += 1
        finally:
            self._slots.release()

    def _where(self, request: TimedRequest) -> tuple[str, dict[str, str]]:
        o = self.options
        if request.target == "sends":
            if o.sends_url is None or o.send_token is None:
                raise ValueError("a send to report, but no /v1/sends URL and token")
            return o.sends_url, {**_JSON, "Authorization": f"Bearer {o.send_token}"}
        if request.target == "qlara":
            if o.qlara_url is None:
                raise ValueError("a dropped final to tell, but no fake Qlara URL")
            return f"{o.qlara_url.rstrip('/')}/_fake/messages", _JSON
        return o.url, _JSON

    async def _report_every(self, display: _Display | None) -> None:
        every = 0.2 if display is not None and display.live else self.options.progress_every_s
        while True:
            await asyncio.sleep(every)
            if display is not None:
                display.update(self._elapsed())
            elif self._report is not None:
                # In a thread: a report may block (the demo's asks the read API).
                await asyncio.to_thread(self._report, self.summary, self._elapsed())


class _Display:
    """Progress on stderr: a rich progress bar on a terminal, a plain line now and then
    otherwise."""

    def __init__(self, options: SendOptions, summary: TrafficSummary) -> None:
        self.options = options
        self.summary = summary
        self.live = options.progress == "bar"
        self._progress: Progress | None = None
        if self.live:
            total = options.messages if options.messages is not None else options.duration
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("[bold]simulate[/bold]"),
                BarColumn(),
                TextColumn("{task.fields[counts]}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
            )
            self._task = self._progress.add_task("simulate", total=total, counts="starting")
            self._progress.start()

    def update(self, elapsed: float) -> None:
        if self._progress is not None:
            done = self.summary.messages if self.options.messages is not None else elapsed
            s = self.summary
            counts = (
                f"{s.unique_events} events, {s.duplicates} dup, {s.messages} msgs, "
                f"{s.non_200} non-200"
            )
            self._progress.update(self._task, completed=done, counts=counts)
        elif self.options.progress == "lines":
            click.echo(f"simulate: {progress_line(self.summary, elapsed)}", err=True)

    def close(self, elapsed: float) -> None:
        if self._progress is not None:
            self.update(elapsed)
            self._progress.stop()


def progress_line(summary: TrafficSummary, elapsed: float) -> str:
    """One line of counts so far: events, duplicates, messages, requests, failures, pace."""
    pace = summary.unique_events / elapsed if elapsed > 0 else 0.0
    return (
        f"{elapsed:.0f} s, {summary.unique_events} events ({summary.duplicates} duplicates) "
        f"in {summary.messages} messages, {summary.requests} requests, "
        f"{summary.non_200} non-200, {pace:.1f} events/s"
    )


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare from the sidecar; the usual backoff will do


def _masked(url: str) -> str:
    """The URL with the token of ``/webhook/<token>`` hidden."""
    head, sep, _ = url.partition("/webhook/")
    return f"{head}{sep}<token>" if sep else url


def local_base_url(settings: Settings) -> str:
    """``http(s)://host:port`` of the sidecar the settings describe, reachable from here."""
    return receiver_url(settings)


def local_webhook_url(settings: Settings) -> str:
    """The webhook URL of the local sidecar, with the token from the settings or tokens.json.

    Raises :class:`~sidecar.tokens.TokenFileError` when no token is known yet.
    """
    tokens = resolve_tokens(settings, generate=False)
    base = local_base_url(settings)
    if tokens.webhook is None:
        return f"{base}/webhook"
    return f"{base}/webhook/{tokens.webhook.get_secret_value()}"


def run_simulate(
    traffic: TrafficOptions, options: SendOptions, summary_file: Path | None = None
) -> int:
    """Post ``traffic`` as ``options`` says; print the summary (and write it); exit status."""
    summary = TrafficSummary(seed=traffic.seed)
    refused: WebhookRefused | None = None

    async def main() -> None:
        nonlocal refused
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            await Sender(options, summary, stop).run(live_traffic(traffic))
        except WebhookRefused as exc:
            refused = exc
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)

    asyncio.run(main())
    text = json.dumps(summary.to_dict(), indent=2)
    if summary_file is not None:
        summary_file.parent.mkdir(parents=True, exist_ok=True)
        summary_file.write_text(text + "\n", encoding="utf-8")
    click.echo(text)
    if refused is not None:
        click.echo(f"qlara-sidecar: error: {refused}", err=True)
        return EXIT_REFUSED
    return EXIT_OK


# The demo ------------------------------------------------------------------------------------

#: The demo's traffic: gentle, every shape and channel, a little of every imperfection.
DEMO_RATE = 2.0
DEMO_TIME_SCALE = 0.1
DEMO_REPORT_EVERY_S = 10.0
#: Share of final statuses the demo's webhook never posts: the reconciler's work, on screen.
DEMO_DROP = 0.1
#: The public URL the demo's fake Qlara has on file, as if a proxy served the webhook there.
DEMO_PUBLIC_URL = "https://qlara-sidecar.demo.invalid/webhook"
#: Seconds the demo's fake Qlara API may take to start.
DEMO_QLARA_START_S = 15.0


class DemoQlara:
    """The fake Qlara API the demo's reconciler polls (:class:`qlara_api.fake.FakeServer`).

    It knows only what the simulation tells it: the final statuses the webhook dropped.
    """

    def __init__(self) -> None:
        from qlara_api.fake import FakeQlara, FakeServer  # only when the demo runs

        self.api_key = secrets.token_urlsafe(24)
        fake = FakeQlara(api_key=self.api_key)
        # Registered already, as `webhook register` would have done: the check reads it back.
        fake.registration = {"callbackUrl": DEMO_PUBLIC_URL}
        self.server = FakeServer(fake)

    def start(self) -> None:
        """Serve, and return once it answers; ``RuntimeError`` if it never does."""
        self.server.start(timeout=DEMO_QLARA_START_S)

    def stop(self) -> None:
        self.server.stop(timeout=STOP_GRACE_S + 1)

    def settings(self, settings: Settings) -> Settings:
        """``settings`` with the reconciler pointed at this fake, whatever they said before:
        the demo's made-up message ids are never sent to the real Qlara."""
        # Secrets reach `up`'s children through the environment only (Settings.to_env).
        os.environ[env_name("qlara_api_key")] = self.api_key
        os.environ[env_name("webhook_public_url")] = DEMO_PUBLIC_URL
        return settings.model_copy(
            update={
                "qlara_api_key": SecretStr(self.api_key),
                "webhook_public_url": SecretStr(DEMO_PUBLIC_URL),
                "qlara_api_url": self.server.api_url,
                "qlara_api_variant": "messages",
            }
        )


class DemoTraffic(threading.Thread):
    """The demo's endless gentle simulation, in a thread beside `up`; :meth:`stop` ends it.

    It waits for the local sidecar's ``/healthz``, then posts :data:`DEMO_RATE` events a
    second, reports each send to ``/v1/sends`` as the application would, drops
    :data:`DEMO_DROP` of the final statuses (telling the fake Qlara at ``qlara_url``
    instead), and prints, every :data:`DEMO_REPORT_EVERY_S` seconds, what it posted beside
    what the sidecar's read API reports.
    """

    def __init__(self, settings: Settings, qlara_url: str) -> None:
        super().__init__(name="demo-traffic", daemon=True)
        self.settings = settings
        self.qlara_url = qlara_url
        self.base = local_base_url(settings)
        self.summary = TrafficSummary()
        self._stopped = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None

    def stop(self) -> None:
        """Ask the thread to stop (from any thread); it ends within a few seconds."""
        self._stopped.set()
        loop, stop = self._loop, self._stop_event
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed already
                loop.call_soon_threadsafe(stop.set)

    def run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._stop_event = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        if self._stopped.is_set():
            return
        if not await self._wait_until_ready():
            return
        try:
            url = local_webhook_url(self.settings)
            tokens = resolve_tokens(self.settings, generate=False)
        except TokenFileError as exc:
            click.echo(f"demo: cannot post: {exc}", err=True)
            return
        read_token = tokens.read.get_secret_value()
        send_token = None if tokens.send is None else tokens.send.get_secret_value()
        seed = int(time.time()) & 0xFFFFFF
        traffic = TrafficOptions(
            rate=DEMO_RATE,
            seed=seed,
            duplicates=0.02,
            reorder=0.02,
            batch_share=0.1,
            time_scale=DEMO_TIME_SCALE,
            start=datetime.now(UTC),
            report_sends=send_token is not None,
            drop=DEMO_DROP,
        )
        self.summary.seed = seed
        click.echo(
            "\n".join(
                [
                    f"Demo traffic: about {DEMO_RATE:g} simulated Qlara events a second (every "
                    "payload shape and channel), posted to the webhook; each send reported to "
                    f"/v1/sends; {DEMO_DROP:.0%} of final statuses never posted, for the "
                    f"reconciler to fill in from the fake Qlara API at {self.qlara_url}/api.",
                    f"  Live numbers:  curl -H 'Authorization: Bearer <read token>' "
                    f"{self.base}/v1/stats/webhook",
                    f"  One message:   curl -H 'Authorization: Bearer <read token>' "
                    f"{self.base}/v1/messages/sim-{seed:x}-0000001",
                    f"  Metrics:       {metrics_url(self.settings)}",
                ]
            )
        )
        options = SendOptions(
            url=url,
            rate=DEMO_RATE * 2,  # a cap above the pace: finals bunch up now and then
            concurrency=4,
            progress="none",
            progress_every_s=DEMO_REPORT_EVERY_S,
            verify=VERIFY_OWN_RECEIVER,
            sends_url=f"{self.base}/v1/sends",
            send_token=send_token,
            qlara_url=self.qlara_url,
        )
        reporter = _DemoReport(self.base, read_token)
        sender = Sender(options, self.summary, self._stop_event, report=reporter)
        try:
            await sender.run(live_traffic(traffic))
        except WebhookRefused as exc:
            click.echo(f"demo: stopped posting: {exc}", err=True)

    async def _wait_until_ready(self) -> bool:
        assert self._stop_event is not None
        async with httpx.AsyncClient(timeout=1.0, verify=VERIFY_OWN_RECEIVER) as client:
            while not self._stop_event.is_set():
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.base}/healthz")).status_code == 200:
                        return True
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop_event.wait(), 0.25)
        return False


class _DemoReport:
    """Prints what the demo posted beside what the sidecar's read API says it recorded."""

    def __init__(self, base: str, read_token: str) -> None:
        self._url = f"{base}/v1/stats/webhook"
        self._headers = {"Authorization": f"Bearer {read_token}"}

    def __call__(self, summary: TrafficSummary, elapsed: float) -> None:
        webhook = summary.unique_events - summary.sends
        line = (
            f"demo: posted {webhook} webhook events ({summary.duplicates} resent) and "
            f"{summary.sends} sends; finals dropped: {summary.dropped}"
        )
        try:
            response = httpx.get(
                self._url, headers=self._headers, timeout=1.0, verify=VERIFY_OWN_RECEIVER
            )
            stats = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            stats = None
        if isinstance(stats, dict):
            line += (
                f", filled by polling Qlara: {stats.get('filledByPollingTotal')}. The ledger "
                f"holds {stats.get('eventsTotal')} events (webhook, sends, polls); "
                f"{stats.get('pending')} messages await a final status"
            )
        click.echo(line)


def run_demo(settings: Settings) -> int:
    """`up` with the demo traffic and its fake Qlara beside it, until Ctrl-C or SIGTERM;
    return the exit status."""
    from sidecar.up import run_up  # the whole stack: imported only when the demo runs

    qlara = DemoQlara()
    try:
        qlara.start()
    except RuntimeError as exc:
        click.echo(f"qlara-sidecar: error: {exc}", err=True)
        return 1
    settings = qlara.settings(settings)
    traffic = DemoTraffic(settings, qlara.server.base_url)
    traffic.start()
    try:
        return run_up(settings)
    finally:
        traffic.stop()
        traffic.join(timeout=STOP_GRACE_S + 1)
        qlara.stop()
        click.echo(
            f"demo: posted {traffic.summary.unique_events} events in "
            f"{traffic.summary.messages} messages; finals dropped: {traffic.summary.dropped}",
            file=sys.stdout,
        )
