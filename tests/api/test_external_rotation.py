"""Rotation with the CA key on another host, through a real mutual-TLS server."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from stockade.api import (
    ApiError,
    ApiServer,
    CertificateRotation,
    ControlPlane,
    Metrics,
    build_app,
    listen,
)
from stockade.errors import IdentityError
from stockade.identity import (
    CA_CERT_FILE,
    CRL_FILE,
    CertificateAuthority,
    DirectoryRenewer,
    Role,
    client_context,
    server_context,
)

from ._helpers import FixedClock, write_cert
from .test_server import _served_serial

HOSTS = ("localhost", "127.0.0.1")


class Pki:
    def __init__(self, tmp_path: Path) -> None:
        self.clock = FixedClock(datetime.now(UTC))  # OpenSSL checks validity on the real clock
        self.ca = CertificateAuthority.init(tmp_path / "issuer-host" / "ca", self.clock)
        self.host = tmp_path / "api-host" / "ca"  # the API host: CA certificate and CRL only
        self.host.mkdir(parents=True)
        shutil.copy(self.ca.cert_path, self.host / CA_CERT_FILE)
        shutil.copy(self.ca.crl_path, self.host / CRL_FILE)
        issued = self.ca.issue("api", Role.GATEWAY, self.clock, hosts=HOSTS)
        self.served = write_cert(tmp_path / "api-host" / "served", issued)
        self.operator = write_cert(
            tmp_path / "clients", self.ca.issue("alice", Role.OPERATOR, self.clock)
        )
        self.drop = tmp_path / "drop"
        self.drop.mkdir()

    def publish(self, ca: CertificateAuthority | None = None, name: str = "api") -> int:
        issued = (ca or self.ca).issue(
            name, Role.GATEWAY, self.clock, validity=timedelta(hours=48), hosts=HOSTS
        )
        (self.drop / "cert.pem").write_bytes(issued.cert_pem)
        (self.drop / "key.pem").write_bytes(issued.key_pem)
        return issued.serial

    def client(self) -> httpx.Client:
        ctx = client_context(self.host / CA_CERT_FILE, self.operator.cert, self.operator.key)
        return httpx.Client(verify=ctx, timeout=5)

    def served_serial(self, port: int) -> int:
        return _served_serial(port, self.ca, self.operator)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


@pytest.fixture
def server(cp: ControlPlane, pki: Pki) -> Iterator[ApiServer]:
    tls = server_context(
        pki.host / CA_CERT_FILE, pki.served.cert, pki.served.key, pki.host / CRL_FILE
    )
    with ApiServer(build_app(cp), listen("127.0.0.1", 0), tls) as srv:
        yield srv


def _rotation(server: ApiServer, pki: Pki, metrics: Metrics | None = None) -> CertificateRotation:
    return CertificateRotation(
        server,
        pki.served.cert,
        pki.served.key,
        pki.host / CA_CERT_FILE,
        pki.clock,
        crl=pki.host / CRL_FILE,
        renewer=DirectoryRenewer(pki.drop),
        metrics=metrics,
    )


@pytest.mark.guarantee("cp-cert-rotation-external")
def test_a_published_pair_is_rotated_in_without_dropping_open_connections(
    server: ApiServer, pki: Pki
) -> None:
    base = f"https://localhost:{server.port}"
    metrics = Metrics()
    rotation = _rotation(server, pki, metrics)
    assert rotation.tick() is None  # nothing published yet
    with pki.client() as op:
        assert op.get(f"{base}/healthz").status_code == 200  # a keep-alive connection is open
        serial = pki.publish()
        assert rotation.tick() == serial
        assert op.get(f"{base}/v1/runs").status_code == 200  # the same connection still works
    assert pki.served_serial(server.port) == serial
    assert any('stockade_certificate_expiry_timestamp_seconds{name="CN=api"}' in line
               for line in metrics.render())  # fmt: skip


@pytest.mark.guarantee("cp-cert-rotation-external")
@pytest.mark.parametrize("bad", ["foreign CA", "other name"])
def test_a_pair_from_a_foreign_ca_or_for_another_name_is_never_served(
    server: ApiServer, pki: Pki, tmp_path: Path, bad: str
) -> None:
    rogue = CertificateAuthority.init(tmp_path / "rogue", pki.clock)
    pki.publish(rogue) if bad == "foreign CA" else pki.publish(name="mallory")
    with pytest.raises(IdentityError, match="renewed certificate refused"):
        _rotation(server, pki).tick()
    assert pki.served_serial(server.port) == pki.served.issued.serial


def test_a_rotation_needs_exactly_one_source(server: ApiServer, pki: Pki) -> None:
    with pytest.raises(ApiError, match="exactly one source"):
        CertificateRotation(server, pki.served.cert, pki.served.key, pki.host, pki.clock)


def _wait_line(proc: subprocess.Popen[str], needle: str, timeout_s: float = 30) -> str:
    assert proc.stdout is not None
    deadline = datetime.now(UTC) + timedelta(seconds=timeout_s)
    while datetime.now(UTC) < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 1.0)
        if ready:
            line = proc.stdout.readline()
            if needle in line:
                return line
            if not line and proc.poll() is not None:
                break
    raise AssertionError(f"no {needle!r} from stockade api serve")


@pytest.mark.guarantee("cp-cert-rotation-external")
def test_stockade_api_serve_starts_without_the_ca_key_when_renewal_is_external(
    pki: Pki, tmp_path: Path
) -> None:
    assert not (pki.host / "ca.key").exists()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "STOCKADE_HOME": str(tmp_path / "h")}
    args = [
        sys.executable, "-m", "stockade", "api", "serve", "--port", "0",
        "--cert", str(pki.served.cert), "--key", str(pki.served.key),
        "--ca-dir", str(pki.host), "--renew-dir", str(pki.drop), "--no-check-runtime",
    ]  # fmt: skip
    proc = subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        line = _wait_line(proc, "stockade control API on https://")
        port = int(line.rsplit(":", 1)[1])
        with pki.client() as op:
            assert op.get(f"https://localhost:{port}/healthz").status_code == 200
    finally:
        proc.kill()
        proc.wait(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    both = subprocess.run(
        [*args, "--renew-command", "true"], env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert both.returncode != 0
    assert "both --renew-command and --renew-dir" in both.stderr
