"""Mutual TLS over real loopback sockets: only TLS 1.3 with a valid, unrevoked CA cert passes."""

from __future__ import annotations

import socket
import ssl
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from stockade.errors import IdentityError
from stockade.identity import (
    CertificateAuthority,
    PeerIdentity,
    Role,
    client_context,
    peer_identity,
    server_context,
)

from ._pki import CertFiles, FixedClock, write_cert


def handshake(
    server: ssl.SSLContext, client: ssl.SSLContext
) -> tuple[PeerIdentity | BaseException, BaseException | None]:
    """One loopback connection: the server's view (identity or error), the client's error."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)
    port = listener.getsockname()[1]
    result: list[PeerIdentity | BaseException] = []

    def serve() -> None:
        try:
            conn, _ = listener.accept()
            conn.settimeout(5)
            with server.wrap_socket(conn, server_side=True) as tls:
                result.append(peer_identity(tls))
                tls.sendall(b"ok")
        except (OSError, IdentityError) as e:
            result.append(e)

    t = threading.Thread(target=serve)
    t.start()
    client_error: BaseException | None = None
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            client.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            # TLS 1.3 client auth is checked after the client's Finished: read to see it.
            if tls.recv(2) != b"ok":
                raise ssl.SSLError("server closed")
    except OSError as e:
        client_error = e
    finally:
        t.join(timeout=10)
        listener.close()
    assert not t.is_alive()
    return result[0], client_error


def _server(ca: CertificateAuthority, s: CertFiles) -> ssl.SSLContext:
    return server_context(ca.cert_path, s.cert, s.key, ca.crl_path)


def _client(ca: CertificateAuthority, c: CertFiles) -> ssl.SSLContext:
    return client_context(ca.cert_path, c.cert, c.key)


@pytest.mark.guarantee("cp-mtls-role")
def test_a_valid_client_certificate_is_accepted_and_mapped_to_its_role(
    ca: CertificateAuthority, server_cert: CertFiles, operator_cert: CertFiles
) -> None:
    seen, err = handshake(_server(ca, server_cert), _client(ca, operator_cert))
    assert err is None
    assert isinstance(seen, PeerIdentity)
    assert (seen.name, seen.role) == ("alice", Role.OPERATOR)
    assert seen.serial == operator_cert.issued.serial


@pytest.mark.guarantee("cp-mtls-wrong-ca")
def test_a_client_certificate_from_another_ca_is_refused(
    tmp_path: Path, ca: CertificateAuthority, server_cert: CertFiles, clock: FixedClock
) -> None:
    other = CertificateAuthority.init(tmp_path / "other", clock)
    mallory = write_cert(tmp_path / "m", other.issue("mallory", Role.OPERATOR, clock))
    seen, err = handshake(
        _server(ca, server_cert), client_context(ca.cert_path, mallory.cert, mallory.key)
    )
    assert isinstance(seen, ssl.SSLError)
    assert err is not None


@pytest.mark.guarantee("cp-mtls-wrong-ca")
def test_a_server_certificate_from_another_ca_is_refused_by_the_client(
    tmp_path: Path, ca: CertificateAuthority, operator_cert: CertFiles, clock: FixedClock
) -> None:
    other = CertificateAuthority.init(tmp_path / "other", clock)
    fake = write_cert(tmp_path / "f", other.issue("api", Role.GATEWAY, clock, hosts=("localhost",)))
    server = server_context(other.cert_path, fake.cert, fake.key, other.crl_path)
    _seen, err = handshake(server, _client(ca, operator_cert))
    assert isinstance(err, ssl.SSLCertVerificationError)


@pytest.mark.guarantee("cp-mtls-expired")
def test_an_expired_client_certificate_is_refused(
    tmp_path: Path, ca: CertificateAuthority, server_cert: CertFiles, clock: FixedClock
) -> None:
    past = FixedClock(clock.t - timedelta(hours=25))
    old = write_cert(
        tmp_path / "old", ca.issue("old", Role.OPERATOR, past, validity=timedelta(hours=1))
    )
    seen, err = handshake(_server(ca, server_cert), _client(ca, old))
    assert isinstance(seen, ssl.SSLError)
    assert "expired" in str(seen)
    assert err is not None


@pytest.mark.guarantee("cp-mtls-tls13-only")
def test_a_tls12_client_is_refused(
    ca: CertificateAuthority, server_cert: CertFiles, operator_cert: CertFiles
) -> None:
    legacy = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    legacy.maximum_version = ssl.TLSVersion.TLSv1_2
    legacy.load_verify_locations(cafile=str(ca.cert_path))
    legacy.load_cert_chain(str(operator_cert.cert), str(operator_cert.key))
    seen, err = handshake(_server(ca, server_cert), legacy)
    assert isinstance(seen, ssl.SSLError)
    assert err is not None


@pytest.mark.guarantee("cp-mtls-revoked")
def test_a_revoked_client_certificate_is_refused(
    ca: CertificateAuthority, server_cert: CertFiles, operator_cert: CertFiles, clock: FixedClock
) -> None:
    ca.revoke(operator_cert.issued.serial, clock)
    seen, err = handshake(_server(ca, server_cert), _client(ca, operator_cert))
    assert isinstance(seen, ssl.SSLError)
    assert "revoked" in str(seen)
    assert err is not None


@pytest.mark.guarantee("cp-mtls-client-cert-required")
def test_a_client_without_a_certificate_is_refused(
    ca: CertificateAuthority, server_cert: CertFiles
) -> None:
    anon = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    anon.load_verify_locations(cafile=str(ca.cert_path))
    seen, err = handshake(_server(ca, server_cert), anon)
    assert isinstance(seen, ssl.SSLError)
    assert err is not None


def test_a_server_without_a_readable_crl_will_not_start(
    tmp_path: Path, ca: CertificateAuthority, server_cert: CertFiles
) -> None:
    with pytest.raises(IdentityError, match="revocation list"):
        server_context(ca.cert_path, server_cert.cert, server_cert.key, tmp_path / "nope.pem")
