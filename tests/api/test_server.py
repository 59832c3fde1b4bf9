"""The control API served over real mutual TLS on 127.0.0.1 (uvicorn, TLS 1.3 only)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from stockade.api import ApiError, ApiServer, ControlPlane, build_app, listen
from stockade.identity import CertificateAuthority, Role, client_context, server_context

from ._helpers import CertFiles, FixedClock, write_cert


@pytest.fixture
def pki(tmp_path: Path, clock: FixedClock) -> tuple[CertificateAuthority, dict[str, CertFiles]]:
    from datetime import UTC, datetime

    real = FixedClock(datetime.now(UTC))  # OpenSSL checks validity against the real clock
    ca = CertificateAuthority.init(tmp_path / "ca", real)
    certs = {
        "server": write_cert(
            tmp_path / "c", ca.issue("api", Role.GATEWAY, real, hosts=("localhost", "127.0.0.1"))
        ),
        "operator": write_cert(tmp_path / "c", ca.issue("alice", Role.OPERATOR, real)),
        "runner": write_cert(tmp_path / "c", ca.issue("run1", Role.RUNNER, real)),
        "revoked": write_cert(tmp_path / "c", ca.issue("eve", Role.OPERATOR, real)),
    }
    ca.revoke(certs["revoked"].issued.serial, real)
    return ca, certs


@pytest.fixture
def server(
    cp: ControlPlane, pki: tuple[CertificateAuthority, dict[str, CertFiles]]
) -> Iterator[ApiServer]:
    ca, certs = pki
    tls = server_context(ca.cert_path, certs["server"].cert, certs["server"].key, ca.crl_path)
    with ApiServer(build_app(cp), listen("127.0.0.1", 0), tls) as srv:
        yield srv


def _client(ca: CertificateAuthority, c: CertFiles) -> httpx.Client:
    return httpx.Client(verify=client_context(ca.cert_path, c.cert, c.key), timeout=5)


@pytest.mark.guarantee("cp-mtls-role")
def test_the_api_over_mtls_maps_certificates_to_roles(
    server: ApiServer, pki: tuple[CertificateAuthority, dict[str, CertFiles]]
) -> None:
    ca, certs = pki
    base = f"https://localhost:{server.port}"
    with _client(ca, certs["operator"]) as op:
        r = op.get(f"{base}/v1/runs")
        assert r.status_code == 200
        assert {x["run_id"] for x in r.json()["runs"]} == {"r1", "r2"}
    with _client(ca, certs["runner"]) as runner:
        assert runner.get(f"{base}/v1/runs").status_code == 403
        assert runner.get(f"{base}/healthz").status_code == 200


@pytest.mark.guarantee("cp-mtls-revoked")
def test_the_api_refuses_a_revoked_certificate(
    server: ApiServer, pki: tuple[CertificateAuthority, dict[str, CertFiles]]
) -> None:
    ca, certs = pki
    with _client(ca, certs["revoked"]) as c, pytest.raises((httpx.TransportError, ssl.SSLError)):
        c.get(f"https://localhost:{server.port}/healthz")


def test_the_server_refuses_a_context_that_does_not_require_client_certificates(
    cp: ControlPlane,
) -> None:
    loose = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sock = listen("127.0.0.1", 0)
    try:
        with pytest.raises(ApiError, match=r"TLS 1\.3-only"):
            ApiServer(build_app(cp), sock, loose)
    finally:
        sock.close()
