"""Renewal with the CA elsewhere: a renewal command or a watched directory, each pair checked."""

from __future__ import annotations

import shutil
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509

from stockade.errors import IdentityError
from stockade.identity import (
    CA_CERT_FILE,
    CRL_FILE,
    CertificateAuthority,
    CommandRenewer,
    DirectoryRenewer,
    IssuedCertificate,
    Role,
    renew_external,
    verify_renewal,
)

from ._pki import CertFiles, FixedClock, write_cert

HOSTS = ("localhost", "127.0.0.1")
LATER = timedelta(hours=17)  # less than a third of a 24 h certificate left: due


@pytest.fixture
def api_host(tmp_path: Path, ca: CertificateAuthority) -> Path:
    """What the API host holds: the CA certificate and CRL, never the CA key."""
    d = tmp_path / "api-host"
    d.mkdir()
    shutil.copy(ca.cert_path, d / CA_CERT_FILE)
    shutil.copy(ca.crl_path, d / CRL_FILE)
    return d


@pytest.fixture
def served(tmp_path: Path, ca: CertificateAuthority, clock: FixedClock) -> CertFiles:
    return write_cert(tmp_path / "served", ca.issue("api", Role.GATEWAY, clock, hosts=HOSTS))


def _renewal(
    ca: CertificateAuthority,
    clock: FixedClock,
    *,
    name: str = "api",
    role: Role = Role.GATEWAY,
    hosts: tuple[str, ...] = HOSTS,
    validity: timedelta = timedelta(hours=48),
) -> IssuedCertificate:
    return ca.issue(name, role, clock, validity=validity, hosts=hosts)


def _publish(d: Path, cert: bytes, key: bytes) -> DirectoryRenewer:
    d.mkdir(parents=True, exist_ok=True)
    (d / "cert.pem").write_bytes(cert)
    (d / "key.pem").write_bytes(key)
    return DirectoryRenewer(d)


def _renew(renewer: object, served: CertFiles, api_host: Path, clock: FixedClock) -> bool:
    return renew_external(
        renewer,  # type: ignore[arg-type]
        served.cert,
        served.key,
        api_host / CA_CERT_FILE,
        clock,
        crl=api_host / CRL_FILE,
    )


@pytest.mark.guarantee("cp-cert-rotation-external")
def test_a_pair_published_by_the_external_issuer_replaces_the_served_one(
    ca: CertificateAuthority, clock: FixedClock, served: CertFiles, api_host: Path, tmp_path: Path
) -> None:
    drop = tmp_path / "drop"
    assert _renew(DirectoryRenewer(drop), served, api_host, clock) is False  # nothing yet
    new = _renewal(ca, clock)
    renewer = _publish(drop, new.cert_pem, new.key_pem)
    assert _renew(renewer, served, api_host, clock) is True
    assert served.cert.read_bytes() == new.cert_pem
    assert served.key.read_bytes() == new.key_pem
    assert (served.key.stat().st_mode & 0o777) == 0o600
    assert _renew(renewer, served, api_host, clock) is False  # already served: nothing to do


def _other_ca(tmp_path: Path, clock: FixedClock) -> CertificateAuthority:
    return CertificateAuthority.init(tmp_path / "rogue-ca", clock)


@pytest.mark.guarantee("cp-cert-rotation-external")
@pytest.mark.parametrize(
    ("case", "step"),
    [
        ("foreign CA", "step 2"),
        ("other name", "step 3"),
        ("other role", "step 3"),
        ("other hosts", "step 3"),
        ("key of another certificate", "step 1"),
        ("not a certificate", "step 1"),
        ("two certificates", "step 1"),
        ("no longer than the served one", "step 4"),
        ("revoked", "step 5"),
    ],
)
def test_a_renewed_pair_that_fails_a_check_is_refused_and_the_old_one_keeps_serving(
    ca: CertificateAuthority,
    clock: FixedClock,
    served: CertFiles,
    api_host: Path,
    tmp_path: Path,
    *,
    case: str,
    step: str,
) -> None:
    good = _renewal(ca, clock)
    cert, key = good.cert_pem, good.key_pem
    if case == "foreign CA":
        rogue = _other_ca(tmp_path, clock).issue("api", Role.GATEWAY, clock, hosts=HOSTS)
        cert, key = rogue.cert_pem, rogue.key_pem
    elif case == "other name":
        other = _renewal(ca, clock, name="mallory")
        cert, key = other.cert_pem, other.key_pem
    elif case == "other role":
        other = _renewal(ca, clock, role=Role.OPERATOR)
        cert, key = other.cert_pem, other.key_pem
    elif case == "other hosts":
        other = _renewal(ca, clock, hosts=("evil.example",))
        cert, key = other.cert_pem, other.key_pem
    elif case == "key of another certificate":
        key = _renewal(ca, clock).key_pem
    elif case == "not a certificate":
        cert = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    elif case == "two certificates":
        cert = good.cert_pem + _renewal(ca, clock).cert_pem
    elif case == "no longer than the served one":
        short = _renewal(ca, clock, validity=timedelta(hours=1))
        cert, key = short.cert_pem, short.key_pem
    elif case == "revoked":
        ca.revoke(good.serial, clock)
        shutil.copy(ca.crl_path, api_host / CRL_FILE)
    before = (served.cert.read_bytes(), served.key.read_bytes())
    with pytest.raises(IdentityError, match=step):
        _renew(_publish(tmp_path / "drop", cert, key), served, api_host, clock)
    assert (served.cert.read_bytes(), served.key.read_bytes()) == before


def test_a_pair_not_yet_valid_is_refused(
    ca: CertificateAuthority, clock: FixedClock, served: CertFiles
) -> None:
    future = _renewal(ca, FixedClock(clock.t + timedelta(hours=2)))
    current = x509.load_pem_x509_certificate(served.cert.read_bytes())
    with pytest.raises(IdentityError, match="step 4"):
        verify_renewal(current, future.cert_pem, future.key_pem, ca.cert, clock)


def _copy_command(new: IssuedCertificate, tmp_path: Path, *, exit_code: int = 0) -> CommandRenewer:
    src = tmp_path / "issued"
    src.mkdir(exist_ok=True)
    (src / "c.pem").write_bytes(new.cert_pem)
    (src / "k.pem").write_bytes(new.key_pem)
    script = (
        "import os, shutil, sys\n"
        "d = os.environ['STOCKADE_RENEW_DIR']\n"
        "assert os.path.exists(os.environ['STOCKADE_CURRENT_CERT'])\n"
        f"shutil.copy({str(src / 'c.pem')!r}, os.path.join(d, 'cert.pem'))\n"
        f"shutil.copy({str(src / 'k.pem')!r}, os.path.join(d, 'key.pem'))\n"
        f"sys.exit({exit_code})\n"
    )
    return CommandRenewer((sys.executable, "-c", script), timeout_s=30)


@pytest.mark.guarantee("cp-cert-rotation-external")
def test_the_renewal_command_runs_only_when_due_and_its_pair_is_installed(
    ca: CertificateAuthority, clock: FixedClock, served: CertFiles, api_host: Path, tmp_path: Path
) -> None:
    new = _renewal(ca, clock)
    renewer = _copy_command(new, tmp_path)
    assert _renew(renewer, served, api_host, clock) is False  # fresh: the command is not run
    assert served.cert.read_bytes() != new.cert_pem
    due = FixedClock(clock.t + LATER)
    assert _renew(renewer, served, api_host, due) is True
    assert served.cert.read_bytes() == new.cert_pem


@pytest.mark.parametrize(
    ("renewer", "message"),
    [
        (CommandRenewer(("/bin/false",)), "exited 1"),
        (CommandRenewer(("/bin/true",)), "did not leave cert.pem"),
        (CommandRenewer(("/nonexistent/issuer",)), "failed to run"),
    ],
)
def test_a_failing_renewal_command_changes_nothing(
    clock: FixedClock, served: CertFiles, api_host: Path, renewer: CommandRenewer, message: str
) -> None:
    before = served.cert.read_bytes()
    with pytest.raises(IdentityError, match=message):
        _renew(renewer, served, api_host, FixedClock(clock.t + LATER))
    assert served.cert.read_bytes() == before


def test_a_renewal_command_is_split_without_a_shell() -> None:
    assert CommandRenewer.parse("issue-cert --name 'api server'").argv == (
        "issue-cert",
        "--name",
        "api server",
    )
    with pytest.raises(IdentityError, match="empty"):
        CommandRenewer.parse("  ")


def test_a_crl_not_signed_by_the_trusted_ca_refuses_every_renewal(
    ca: CertificateAuthority, clock: FixedClock, served: CertFiles, api_host: Path, tmp_path: Path
) -> None:
    shutil.copy(_other_ca(tmp_path, clock).crl_path, api_host / CRL_FILE)
    new = _renewal(ca, clock)
    with pytest.raises(IdentityError, match="CRL is not signed"):
        _renew(_publish(tmp_path / "drop", new.cert_pem, new.key_pem), served, api_host, clock)
