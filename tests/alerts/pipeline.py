"""The alerting pipeline on loopback, for tests: Prometheus, Alertmanager (Debian's binaries),
a pager, a small HTTP server that keeps every notification Alertmanager posts to it, and
`qlara-sidecar simulate` processes standing in for Qlara."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.e2e.sidecar_process import Sidecar, free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
ALERTMANAGER_EXAMPLE = ROOT / "alerts" / "alertmanager" / "alertmanager.yml"


@dataclass(frozen=True)
class Notification:
    """One webhook post from Alertmanager: to which receiver, when, and what it said."""

    receiver: str
    received_at: float
    body: dict[str, Any]

    @property
    def status(self) -> str:
        return str(self.body["status"])

    def alerts(self, name: str, status: str | None = None) -> list[dict[str, Any]]:
        """The notification's alerts called ``name`` (and in ``status``, if given)."""
        return [
            alert
            for alert in self.body["alerts"]
            if alert["labels"].get("alertname") == name
            and (status is None or alert["status"] == status)
        ]


@dataclass
class Pager:
    """An HTTP server on loopback standing in for every receiver: a post to ``/<receiver>``
    is kept as a :class:`Notification`."""

    port: int = field(default_factory=free_port)
    notifications: list[Notification] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def serve(self) -> Iterator[Pager]:
        pager = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with pager._lock:
                    pager.notifications.append(
                        Notification(self.path.strip("/"), time.monotonic(), body)
                    )
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()

    def received(self) -> list[Notification]:
        with self._lock:
            return list(self.notifications)

    def wait_for_alert(
        self,
        name: str,
        *,
        status: str,
        receiver: str,
        after: float,
        timeout: float,
        where: Callable[[dict[str, Any]], bool] = lambda alert: True,
    ) -> tuple[Notification, dict[str, Any]]:
        """The first notification to ``receiver`` received after ``after`` (monotonic) with an
        alert ``name`` in ``status`` that ``where`` accepts; fail after ``timeout`` seconds."""

        def seen() -> tuple[Notification, dict[str, Any]] | None:
            for notification in self.received():
                if notification.receiver != receiver or notification.received_at <= after:
                    continue
                for alert in notification.alerts(name, status):
                    if where(alert):
                        return notification, alert
            return None

        found: tuple[Notification, dict[str, Any]] = wait_for(
            seen, timeout=timeout, what=f"{name} {status} at the {receiver} receiver"
        )
        return found


def alertmanager_config_for_tests(pager_url: str) -> dict[str, Any]:
    """The example configuration with every receiver replaced by a webhook to the pager
    (``{pager_url}/<receiver name>``) and second-long grouping, so that a test sees a
    notification a second or two after Prometheus sends the alert. The routes, matchers
    and inhibitions are the example's own."""
    config: dict[str, Any] = copy.deepcopy(yaml.safe_load(ALERTMANAGER_EXAMPLE.read_text()))
    config["global"] = {"resolve_timeout": "5s"}
    config["receivers"] = [
        {
            "name": receiver["name"],
            "webhook_configs": [{"url": f"{pager_url}/{receiver['name']}", "send_resolved": True}],
        }
        for receiver in config["receivers"]
    ]
    routes = [config["route"]]
    while routes:
        route = routes.pop()
        route.update(group_wait="1s", group_interval="1s", repeat_interval="1h")
        routes.extend(route.get("routes", []))
    return config


@dataclass
class Service:
    """A process of the pipeline started by a test, on a free loopback port."""

    name: str
    command: list[str]
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        wait_for(self._ready, timeout=timeout, what=f"{self.name} to be ready")

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited early:\n{self.log_path.read_text()}")
        return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Simulators:
    """`qlara-sidecar simulate` processes posting to one sidecar; all stopped at the end."""

    def __init__(self, sidecar: Sidecar, directory: Path) -> None:
        self.sidecar = sidecar
        self.directory = directory
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        log = self.directory / f"simulate{len(self.started)}.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                [
                    str(Path(sys.executable).with_name("qlara-sidecar")),
                    "simulate",
                    "--url",
                    self.sidecar.webhook_url,
                    "--progress",
                    "none",
                    *args,
                ],
                env=self.sidecar.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def alertmanager(binary: str, directory: Path, config: dict[str, Any]) -> Service:
    """An Alertmanager with ``config``, clustering off, its state under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    config_path = directory / "alertmanager.yml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    return Service(
        "alertmanager",
        [
            binary,
            f"--config.file={config_path}",
            f"--storage.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ],
        port,
        directory / "alertmanager.log",
    )


def prometheus(
    binary: str,
    directory: Path,
    *,
    job: str,
    target: str,
    rule_files: list[Path],
    alertmanager_port: int | None = None,
) -> Service:
    """A Prometheus scraping ``target`` as ``job`` and evaluating ``rule_files`` every
    second, sending alerts to the Alertmanager on ``alertmanager_port`` (if any); its TSDB
    under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": [target]}]}],
    }
    if alertmanager_port is not None:
        config["alerting"] = {
            "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}]
        }
    config_path = directory / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    return Service(
        "prometheus",
        [
            binary,
            f"--config.file={config_path}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--rules.alert.resend-delay=1s",
            "--log.level=warn",
        ],
        port,
        directory / "prometheus.log",
    )


def query(service: Service, promql: str) -> list[dict[str, Any]]:
    """The result of an instant query (``data.result``)."""
    response = httpx.get(f"{service.url}/api/v1/query", params={"query": promql}, timeout=10)
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result
