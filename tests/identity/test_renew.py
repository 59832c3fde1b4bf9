"""Renewal before expiry: the served pair is replaced once a third of its life is left."""

from __future__ import annotations

import stat
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509

from stockade.identity import CertificateAuthority, Role, identity_from_certificate, renew_if_due

from ._pki import FixedClock, write_cert


@pytest.mark.guarantee("cp-cert-rotation")
def test_a_certificate_is_renewed_with_the_same_identity_once_a_third_of_its_life_is_left(
    ca: CertificateAuthority, clock: FixedClock, tmp_path: Path
) -> None:
    files = write_cert(
        tmp_path, ca.issue("api", Role.GATEWAY, clock, hosts=("localhost", "127.0.0.1"))
    )
    later = FixedClock(clock.t + timedelta(hours=10))
    assert renew_if_due(ca, files.cert, files.key, later) is False
    assert (
        x509.load_pem_x509_certificate(files.cert.read_bytes()).serial_number == files.issued.serial
    )
    due = FixedClock(clock.t + timedelta(hours=17))
    assert renew_if_due(ca, files.cert, files.key, due) is True
    new = x509.load_pem_x509_certificate(files.cert.read_bytes())
    assert new.serial_number != files.issued.serial
    peer = identity_from_certificate(new)
    assert (peer.name, peer.role) == ("api", Role.GATEWAY)
    san = new.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert abs(new.not_valid_after_utc - due.t - timedelta(hours=24)) < timedelta(seconds=2)
    assert stat.S_IMODE(files.key.stat().st_mode) == 0o600
