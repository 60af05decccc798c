"""HTTPS served by the receiver itself when a certificate and key are configured."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import trustme

from tests.e2e.sidecar_process import Sidecar, wait_for

pytestmark = pytest.mark.e2e

EVENT = {
    "messageId": "tls-1",
    "status": "DELIVERED",
    "timestamp": "2025-04-08T14:30:00Z",
    "channel": "sms",
}


def test_with_a_certificate_the_webhook_and_read_api_are_served_over_https_only(
    make_sidecar: Callable[..., Sidecar], tmp_path: Path
) -> None:
    # Given a certificate for 127.0.0.1 from a CA of the test's own
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))
    sidecar = make_sidecar(tls_cert_file=str(cert_file), tls_key_file=str(key_file))
    sidecar.ca_file = str(ca_file)

    # When it runs, and an event is posted over HTTPS with that CA trusted
    sidecar.start()
    answer = httpx.post(sidecar.webhook_url, json=EVENT, verify=sidecar.verify, timeout=10)

    # Then it is accepted and recorded, and readable over HTTPS
    assert answer.status_code == 200
    assert answer.json() == {"status": "received"}
    message = wait_for(
        lambda: sidecar.read("/v1/messages/tls-1") if _known(sidecar) else None,
        timeout=60,
        what="the event over HTTPS to be recorded",
    )
    assert message["status"] == "delivered"
    # And plain HTTP on that port gets no answer, and an unknown CA is refused
    with pytest.raises(httpx.HTTPError):
        httpx.post(sidecar.webhook_url.replace("https:", "http:"), json=EVENT, timeout=10)
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.post(sidecar.webhook_url, json=EVENT, verify=ssl.create_default_context())
    # And the banner gives the HTTPS address
    assert f"https://127.0.0.1:{sidecar.port}/webhook" in sidecar.log()


def _known(sidecar: Sidecar) -> bool:
    try:
        sidecar.read("/v1/messages/tls-1")
    except httpx.HTTPStatusError:
        return False
    return True


def test_a_certificate_without_its_key_stops_the_command_naming_the_variable(
    make_sidecar: Callable[..., Sidecar], tmp_path: Path
) -> None:
    import subprocess

    cert_file = tmp_path / "cert.pem"
    trustme.CA().issue_cert("127.0.0.1").cert_chain_pems[0].write_to_path(str(cert_file))
    sidecar = make_sidecar(tls_cert_file=str(cert_file))

    result = subprocess.run(
        [str(Path(__file__).resolve().parents[2] / ".venv/bin/qlara-sidecar"), "up"],
        env=sidecar.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    assert "QLARA_SIDECAR_TLS_KEY_FILE: must be set together with QLARA_SIDECAR_TLS_CERT_FILE" in (
        result.stderr
    )
