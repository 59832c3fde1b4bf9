"""The CA: key files private, certificates short-lived and role-bearing, roles parsed strictly."""

from __future__ import annotations

import stat
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from stockade import identity
from stockade.errors import IdentityError
from stockade.identity import (
    CA_KEY_FILE,
    CertificateAuthority,
    Role,
    identity_from_certificate,
)

from ._pki import FixedClock


def test_public_surface_is_curated() -> None:
    assert sorted(identity.__all__) == sorted(
        n for n in dir(identity) if not n.startswith("_") and n not in {"annotations"}
    )


@pytest.mark.guarantee("cp-ca-key-private")
def test_ca_init_writes_the_key_0600_in_a_0700_directory(tmp_path: Path, clock: FixedClock) -> None:
    ca = CertificateAuthority.init(tmp_path / "ca", clock)
    assert stat.S_IMODE((tmp_path / "ca").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "ca" / CA_KEY_FILE).stat().st_mode) == 0o600
    assert ca.cert_path.exists()
    assert ca.crl_path.exists()


def test_ca_init_refuses_to_overwrite_an_existing_ca(tmp_path: Path, clock: FixedClock) -> None:
    CertificateAuthority.init(tmp_path / "ca", clock)
    with pytest.raises(IdentityError, match="already exists"):
        CertificateAuthority.init(tmp_path / "ca", clock)


@pytest.mark.guarantee("cp-ca-key-private")
def test_a_ca_key_readable_by_others_is_refused(tmp_path: Path, clock: FixedClock) -> None:
    CertificateAuthority.init(tmp_path / "ca", clock)
    (tmp_path / "ca" / CA_KEY_FILE).chmod(0o644)
    with pytest.raises(IdentityError, match="0600"):
        CertificateAuthority.load(tmp_path / "ca")


@pytest.mark.guarantee("cp-cert-short-lived")
def test_issued_certificates_last_24_hours_by_default_and_carry_the_role(
    ca: CertificateAuthority, clock: FixedClock
) -> None:
    issued = ca.issue("gw", Role.GATEWAY, clock)
    cert = x509.load_pem_x509_certificate(issued.cert_pem)
    assert abs(cert.not_valid_after_utc - clock.now() - timedelta(hours=24)) < timedelta(seconds=1)
    peer = identity_from_certificate(cert)
    assert (peer.name, peer.role) == ("gw", Role.GATEWAY)


@pytest.mark.guarantee("cp-cert-short-lived")
def test_long_lived_certificates_are_refused(ca: CertificateAuthority, clock: FixedClock) -> None:
    with pytest.raises(IdentityError, match="at most"):
        ca.issue("gw", Role.GATEWAY, clock, validity=timedelta(days=365))


def _cert_with_uris(uris: list[str]) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    b = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(hours=1))
    )
    if uris:
        b = b.add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(u) for u in uris]), False
        )
    return b.sign(key, hashes.SHA256())


@pytest.mark.guarantee("cp-mtls-role")
@pytest.mark.parametrize(
    "uris",
    [
        [],
        ["https://example.invalid/"],
        ["stockade://role/root"],
        ["stockade://role/operator", "stockade://role/runner"],
    ],
)
def test_a_certificate_without_exactly_one_known_role_maps_to_no_identity(uris: list[str]) -> None:
    with pytest.raises(IdentityError):
        identity_from_certificate(_cert_with_uris(uris))


def test_revocation_is_recorded_in_the_signed_crl(
    ca: CertificateAuthority, clock: FixedClock
) -> None:
    issued = ca.issue("bob", Role.RUNNER, clock)
    ca.revoke(issued.serial, clock)
    crl = x509.load_pem_x509_crl(ca.crl_path.read_bytes())
    pub = ca.cert.public_key()
    assert isinstance(pub, ec.EllipticCurvePublicKey)
    assert crl.is_signature_valid(pub)
    assert crl.get_revoked_certificate_by_serial_number(issued.serial) is not None
    assert issued.serial in ca.revoked_serials()


@pytest.mark.guarantee("cp-mtls-revoked")
def test_each_new_crl_is_strictly_newer_even_within_one_second(
    ca: CertificateAuthority, clock: FixedClock
) -> None:
    seen = []
    for _ in range(3):
        ca.revoke(ca.issue("x", Role.RUNNER, clock).serial, clock)  # same instant every time
        crl = x509.load_pem_x509_crl(ca.crl_path.read_bytes())
        number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        seen.append((crl.last_update_utc, number))
    assert [n for _, n in seen] == sorted({n for _, n in seen})
    assert [t for t, _ in seen] == sorted({t for t, _ in seen})
