"""Two receiver hosts and two worker hosts over one Redis and one PostgreSQL, behind a
round-robin proxy, each scraped by a real Prometheus: every event is recorded once and the
counters summed over the hosts match what Qlara sent, before and after a receiver host and a
worker host are SIGKILLed and started again.

A "host" is one `qlara-sidecar receiver` or `qlara-sidecar worker` process tree with a data
directory, a metrics directory and a loopback address of its own (127.0.0.2 ... 127.0.0.5):
network namespaces would need root and a route back to the machine's Redis and PostgreSQL,
which listen on 127.0.0.1 only. Caddy balances the webhook over the two receivers as in
compose.yaml. Redis is shared under a key namespace of the test's own, PostgreSQL through a
database of its own.

What must hold, and why:

- Before the kills: the ledger holds each unique event once, and Prometheus'
  ``qlara_events_total`` and ``qlara_duplicate_events_total`` summed over the hosts equal the
  simulator's summary exactly, as do the requests the receivers took.
- After the kills: nothing acknowledged is lost (the ledger holds exactly the unique events
  of both runs); no counter summed over the hosts went back (a role keeps its counters
  across a restart, :mod:`sidecar.metrics_dir`); and the sums still equal the ledger
  exactly. The event counters are kept in the ledger's own transactions
  (:mod:`ledger.counting`), so a worker killed between its commit and anything after it
  loses no count, and a redelivered message, found recorded, counts nothing twice. A
  request made durable whose 200 never left the killed receiver is sent again: its events
  are extra duplicates, so duplicates are at least the simulator's, and exactly the
  ledger's.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.alerts.conftest import prometheus_binary, services
from tests.alerts.pipeline import Service, query
from tests.conftest import on_path
from tests.e2e.sidecar_process import READ_TOKEN, WEBHOOK_TOKEN, children_of, free_port, wait_for

__all__ = ["prometheus_binary", "services"]

pytestmark = pytest.mark.e2e

QLARA_SIDECAR = str(Path(sys.executable).with_name("qlara-sidecar"))
#: A dead worker's unacknowledged messages come back after this many seconds.
HEARTBEAT_TIMEOUT_S = "3"

Series = dict[tuple[str, ...], float]


def _clean_env(**settings: str) -> dict[str, str]:
    """This environment without any QLARA_SIDECAR_* or multiprocess directory, plus
    ``settings``: each host decides its own."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("QLARA_SIDECAR_") and k != "PROMETHEUS_MULTIPROC_DIR"
    }
    env.update({f"QLARA_SIDECAR_{k.upper()}": v for k, v in settings.items()})
    return env


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@dataclass
class Host:
    """One process tree started in a session of its own, with a readiness check."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    ready: Callable[[], bool]
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> Host:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.starts += 1
        wait_for(self._ready, timeout=90, what=f"{self.name} to be ready")
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited early:\n{self.log()[-3000:]}")
        return self.ready()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the whole tree at once, as a host losing power: its process group, and
        the group of each supervised child (each leads a session of its own)."""
        assert self.process is not None
        tree = [self.process.pid, *(pid for pid, _ in children_of(self.process.pid))]
        for pid in tree:
            for kill in (os.killpg, os.kill):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    kill(pid, signal.SIGKILL)
        self.process.wait()
        wait_for(
            lambda: not any(_alive(pid) for pid in tree),
            timeout=10,
            what=f"every process of {self.name} to be gone",
        )

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()


def _answers(url: str) -> bool:
    return httpx.get(url, timeout=2).status_code == 200


def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(url, timeout=5).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@dataclass
class Cluster:
    """The hosts, the proxy in front of the receivers, and where their state lives."""

    receivers: list[Host] = field(default_factory=list)
    workers: list[Host] = field(default_factory=list)
    proxy: Host | None = None
    receiver_metrics: list[str] = field(default_factory=list)
    worker_metrics: list[str] = field(default_factory=list)
    database: str = ""

    @property
    def hosts(self) -> list[Host]:
        return [*self.receivers, *self.workers]

    def ledger(self) -> Series:
        """Events in the ledger by (channel, status)."""
        with psycopg.connect(self.database) as conn:
            rows = conn.execute(
                "SELECT coalesce(channel, 'other'), status, count(*) FROM events GROUP BY 1, 2"
            ).fetchall()
        return {(str(channel), str(status)): float(n) for channel, status, n in rows}

    def ledger_duplicates(self, url: str) -> int:
        response = httpx.get(
            f"{url}/v1/stats/webhook",
            headers={"Authorization": f"Bearer {READ_TOKEN}"},
            timeout=10,
        )
        response.raise_for_status()
        return int(response.json()["duplicatesTotal"])

    def drained(self) -> bool:
        """Nothing waits anywhere: the broker holds no message (waiting, delayed or in
        flight) and no receiver's spool holds an event; asked of the hosts now."""
        queue = _scrape(self.worker_metrics[0])
        if queue.get(("qlara_queue_messages", (("queue", "work"),))) != 0:
            return False
        return all(
            _scrape(url).get(("qlara_spool_events", ())) == 0 for url in self.receiver_metrics
        )


def _summary_events(*summaries: dict[str, Any]) -> Series:
    total: Series = {}
    for summary in summaries:
        for channel, statuses in summary["events"].items():
            for status, n in statuses.items():
                total[(channel, status)] = total.get((channel, status), 0) + n
    return total


def _by(result: list[dict[str, Any]], *labels: str) -> Series:
    """An instant vector as {label values: value}, zeros left out."""
    found = {
        tuple(sample["metric"].get(label, "") for label in labels): float(sample["value"][1])
        for sample in result
    }
    return {key: value for key, value in found.items() if value != 0}


def _scalar(server: Service, promql: str) -> float:
    result = query(server, promql)
    return float(result[0]["value"][1]) if result else 0.0


def _counters_reset(server: Service) -> dict[str, float]:
    """The counters (and histogram counts) whose value went down in any series since the
    test began, by name: Prometheus' ``resets`` (one name at a time, as it drops the name)."""
    response = httpx.get(f"{server.url}/api/v1/label/__name__/values", timeout=10)
    response.raise_for_status()
    names = [
        name
        for name in response.json()["data"]
        if name.startswith("qlara_") and name.endswith(("_total", "_count"))
    ]
    assert "qlara_events_total" in names
    found = {name: _scalar(server, f'sum(resets({name}{{job="qlara"}}[10m]))') for name in names}
    return {name: n for name, n in found.items() if n}


@pytest.fixture
def caddy() -> str:
    return on_path("caddy", package="caddy")


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """Where the test keeps its hosts; each is stopped afterwards, the proxy last."""
    made = Cluster()
    yield made
    for host in made.hosts:
        host.stop()
    if made.proxy is not None:
        made.proxy.stop()


@dataclass
class Simulation:
    """A `qlara-sidecar simulate` process and the summary file it writes at its end."""

    process: subprocess.Popen[bytes]
    summary_path: Path

    def finished(self, timeout: float) -> dict[str, Any]:
        """Wait for the end (bounded); its summary, every request acknowledged in the end."""
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            self.process.wait()
            raise
        assert code == 0, f"simulate exited {code}"
        summary: dict[str, Any] = json.loads(self.summary_path.read_text())
        # The proxy sends nothing to a dead receiver, so Qlara's retries always get through
        assert summary["given_up"] == 0
        return summary


def simulate(url: str, directory: Path, name: str, *args: str) -> Simulation:
    """Start `qlara-sidecar simulate` posting to ``url``, with duplicates and reordering."""
    summary = directory / f"{name}.json"
    argv = [
        QLARA_SIDECAR, "simulate", "--url", url, "--progress", "none",
        "--duplicates", "0.05", "--reorder", "0.05", "--time-scale", "0.01",
        "--concurrency", "8", "--summary-file", str(summary), *args,
    ]  # fmt: skip
    with (directory / f"{name}.log").open("ab") as log:
        process = subprocess.Popen(
            argv, env=_clean_env(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    return Simulation(process, summary)


def test_two_receiver_hosts_and_two_worker_hosts_count_exactly_through_host_kills(
    redis_url: str,
    namespace: str,
    postgres_url: str,
    prometheus_binary: str,
    caddy: str,
    services: list[Service],
    cluster: Cluster,
    tmp_path: Path,
) -> None:
    cluster.database = postgres_url.replace("postgresql+psycopg://", "postgresql://", 1)
    migrated = subprocess.run(
        [QLARA_SIDECAR, "migrate"],
        env=_clean_env(database_url=postgres_url, data_dir=str(tmp_path / "migrate")),
        capture_output=True,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stderr.decode()

    # Given two receiver hosts and two worker hosts, each with its own address, data and
    # metrics directory, over the machine's Redis (a namespace of this test's) and PostgreSQL
    shared = {
        "redis_url": redis_url,
        "namespace": namespace,
        "database_url": postgres_url,
        "webhook_token": WEBHOOK_TOKEN,
        "read_token": READ_TOKEN,
        "log_format": "json",
    }
    targets: list[tuple[str, str]] = []
    receiver_urls: list[str] = []
    for index, name in enumerate(("receiver-a", "receiver-b")):
        address, port, metrics_port = f"127.0.0.{2 + index}", free_port(), free_port()
        base, metrics = f"http://{address}:{port}", f"http://{address}:{metrics_port}"
        receiver_urls.append(base)
        cluster.receiver_metrics.append(f"{metrics}/metrics")
        targets.append((name, f"{address}:{metrics_port}"))
        cluster.receivers.append(
            Host(
                name,
                [QLARA_SIDECAR, "receiver", "--processes", "1"],
                _clean_env(
                    **shared,
                    data_dir=str(tmp_path / name),
                    host=address,
                    port=str(port),
                    metrics_host=address,
                    metrics_port=str(metrics_port),
                ),
                tmp_path / f"{name}.log",
                ready=lambda b=base, m=metrics: (
                    _answers(f"{b}/readyz") and _answers(f"{m}/healthz")
                ),
            )
        )
    for index, name in enumerate(("worker-a", "worker-b")):
        address, metrics_port = f"127.0.0.{4 + index}", free_port()
        metrics = f"http://{address}:{metrics_port}"
        cluster.worker_metrics.append(f"{metrics}/metrics")
        targets.append((name, f"{address}:{metrics_port}"))
        cluster.workers.append(
            Host(
                name,
                [QLARA_SIDECAR, "worker", "--processes", "1"],
                _clean_env(
                    **shared,
                    data_dir=str(tmp_path / name),
                    metrics_host=address,
                    metrics_port=str(metrics_port),
                    worker_threads="8",
                    broker_heartbeat_timeout=HEARTBEAT_TIMEOUT_S,
                ),
                tmp_path / f"{name}.log",
                ready=lambda m=metrics: _answers(f"{m}/healthz"),
            )
        )
    for host in cluster.hosts:
        host.start()

    # And Caddy balancing round robin over the receivers, as compose.yaml's does
    proxy_port = free_port()
    upstreams = " ".join(url.removeprefix("http://") for url in receiver_urls)
    caddyfile = tmp_path / "Caddyfile"
    caddyfile.write_text(
        "{\n\tadmin off\n\tauto_https off\n}\n"
        f"http://127.0.0.1:{proxy_port} {{\n"
        f"\treverse_proxy {upstreams} {{\n"
        "\t\tlb_policy round_robin\n\t\tlb_try_duration 5s\n\t\tlb_try_interval 100ms\n"
        "\t\thealth_uri /readyz\n\t\thealth_interval 1s\n\t\thealth_timeout 1s\n"
        "\t}\n}\n"
    )
    cluster.proxy = Host(
        "caddy",
        [caddy, "run", "--config", str(caddyfile), "--adapter", "caddyfile"],
        {**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg"), "XDG_CONFIG_HOME": str(tmp_path)},
        tmp_path / "caddy.log",
        ready=lambda: _answers(f"http://127.0.0.1:{proxy_port}/readyz"),
    ).start()
    webhook = f"http://127.0.0.1:{proxy_port}/webhook/{WEBHOOK_TOKEN}"

    # And a Prometheus scraping every host each second
    directory = tmp_path / "prometheus"
    directory.mkdir()
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [
            {
                "job_name": "qlara",
                "static_configs": [
                    {"targets": [target], "labels": {"host": name}} for name, target in targets
                ],
            }
        ],
    }
    (directory / "prometheus.yml").write_text(yaml.safe_dump(config))
    prometheus_port = free_port()
    server = Service(
        "prometheus",
        [
            prometheus_binary,
            f"--config.file={directory / 'prometheus.yml'}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{prometheus_port}",
            "--log.level=warn",
        ],
        prometheus_port,
        directory / "prometheus.log",
    )
    services.append(server)
    server.start()
    wait_for(
        lambda: _scalar(server, 'count(up{job="qlara"} == 1)') == 4,
        timeout=60,
        what="Prometheus to scrape the four hosts",
    )

    def settled(expected_events: Series) -> None:
        """Wait until the ledger holds ``expected_events`` and nothing waits anywhere (a
        message leaves the broker once its receipts are counted), then until Prometheus has
        scraped every host since."""
        wait_for(
            lambda: cluster.ledger() == expected_events,
            timeout=90,
            what=f"the ledger to hold {expected_events}",
        )
        wait_for(cluster.drained, timeout=60, what="the queue and the spools to be empty")
        since = time.time()
        # timestamp() of a plain selector is the scrape's time; of an expression, it would be
        # the query's
        up = 'up{job="qlara"}'
        scraped = f"count(timestamp({up}) > {since} and on (instance) {up} == 1)"
        wait_for(
            lambda: _scalar(server, scraped) == 4,
            timeout=30,
            what="a successful scrape of every host after the queue drained",
        )

    def sums() -> tuple[Series, float, float, float]:
        events = _by(
            query(server, "sum by (channel, status) (qlara_events_total)"), "channel", "status"
        )
        duplicates = _scalar(server, "sum(qlara_duplicate_events_total)")
        taken = _scalar(server, 'sum(qlara_webhook_requests_total{outcome=~"accepted|spooled"})')
        replayed = _scalar(server, "sum(qlara_receipts_replayed_total)")
        return events, duplicates, taken, replayed

    # When Qlara sends traffic with duplicates and reordering through the proxy
    first = simulate(
        webhook, tmp_path, "first", "--messages", "300", "--rate", "150", "--seed", "5"
    ).finished(timeout=120)

    # Then every event is in the ledger once, and the sums over the hosts are exact
    expected = _summary_events(first)
    settled(expected)
    assert cluster.ledger_duplicates(receiver_urls[0]) == first["duplicates"]
    events, duplicates, taken, replayed = sums()
    assert events == expected
    assert duplicates == first["duplicates"]
    assert taken == first["acknowledged_requests"]
    assert replayed == 0
    # And both receivers took requests, and both workers recorded events
    per_host = _by(query(server, "sum by (host) (qlara_webhook_requests_total)"), "host")
    assert per_host.keys() >= {("receiver-a",), ("receiver-b",)}
    per_host = _by(query(server, "sum by (host) (qlara_events_total)"), "host")
    assert per_host.keys() == {("worker-a",), ("worker-b",)}

    # When more traffic flows and, mid-run, a receiver host and a worker host are SIGKILLed
    second_run = simulate(
        webhook, tmp_path, "second", "--messages", "1200", "--rate", "120", "--seed", "6"
    )
    recorded_before = sum(expected.values())
    wait_for(
        lambda: sum(cluster.ledger().values()) >= recorded_before + 300,
        timeout=60,
        what="the second run to be under way",
    )
    killed_receiver, killed_worker = cluster.receivers[0], cluster.workers[0]
    killed_receiver.kill()
    killed_worker.kill()
    # And the other hosts carry the traffic for a while, then the two start again with the
    # data and metrics directories they had
    wait_for(
        lambda: sum(cluster.ledger().values()) >= recorded_before + 600,
        timeout=60,
        what="the surviving hosts to carry the traffic",
    )
    killed_receiver.start()
    killed_worker.start()
    second = second_run.finished(timeout=120)

    # Then nothing acknowledged is lost: each unique event of both runs is in the ledger once
    expected = _summary_events(first, second)
    settled(expected)
    ledger_duplicates = cluster.ledger_duplicates(receiver_urls[1])
    assert ledger_duplicates >= first["duplicates"] + second["duplicates"]
    events, duplicates, taken, replayed = sums()
    # And no counter of any host went back when the two hosts started again
    assert _counters_reset(server) == {}
    # And the receivers took every acknowledged request (resent ones more than once)
    assert taken >= first["acknowledged_requests"] + second["acknowledged_requests"]
    # And the sums over the hosts are still exactly the ledger's: no count was lost with the
    # killed worker, none was made twice by the messages it left to be redelivered
    assert events == expected
    assert duplicates == ledger_duplicates
    print(
        f"after the kills: replayed {replayed:.0f}, duplicates {duplicates:.0f} (ledger "
        f"{ledger_duplicates}, sent {first['duplicates'] + second['duplicates']})"
    )
