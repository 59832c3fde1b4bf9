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


def _served_serial(port: int, ca: CertificateAuthority, c: CertFiles) -> int:
    import socket

    from cryptography import x509

    ctx = client_context(ca.cert_path, c.cert, c.key)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


@pytest.mark.guarantee("cp-cert-rotation")
def test_rotation_serves_the_new_certificate_without_dropping_open_connections(
    server: ApiServer, pki: tuple[CertificateAuthority, dict[str, CertFiles]], tmp_path: Path
) -> None:
    from datetime import UTC, datetime

    ca, certs = pki
    base = f"https://localhost:{server.port}"
    assert _served_serial(server.port, ca, certs["operator"]) == certs["server"].issued.serial
    with _client(ca, certs["operator"]) as op:
        assert op.get(f"{base}/healthz").status_code == 200  # keep-alive connection now open
        new = write_cert(
            tmp_path / "new",
            ca.issue("api", Role.GATEWAY, FixedClock(datetime.now(UTC)), hosts=("localhost",)),
        )
        server.rotate(new.cert, new.key)
        assert op.get(f"{base}/healthz").status_code == 200  # same connection still served
        assert op.get(f"{base}/v1/runs").status_code == 200
    assert _served_serial(server.port, ca, certs["operator"]) == new.issued.serial


@pytest.mark.guarantee("cp-mtls-revoked")
def test_a_certificate_revoked_after_start_is_refused_once_the_crl_is_reloaded(
    server: ApiServer, pki: tuple[CertificateAuthority, dict[str, CertFiles]]
) -> None:
    from datetime import UTC, datetime

    ca, certs = pki
    base = f"https://localhost:{server.port}"
    with _client(ca, certs["runner"]) as c:
        assert c.get(f"{base}/healthz").status_code == 200
    ca.revoke(certs["runner"].issued.serial, FixedClock(datetime.now(UTC)))
    server.rotate(certs["server"].cert, certs["server"].key, ca.crl_path)
    with _client(ca, certs["runner"]) as c, pytest.raises((httpx.TransportError, ssl.SSLError)):
        c.get(f"{base}/healthz")


def test_rotation_to_a_mismatched_pair_keeps_the_old_certificate(
    server: ApiServer, pki: tuple[CertificateAuthority, dict[str, CertFiles]]
) -> None:
    ca, certs = pki
    with pytest.raises(ApiError, match="cannot rotate"):
        server.rotate(certs["server"].cert, certs["operator"].key)
    assert _served_serial(server.port, ca, certs["operator"]) == certs["server"].issued.serial
