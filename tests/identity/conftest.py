from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from stockade.identity import CertificateAuthority, Role

from ._pki import CertFiles, FixedClock, write_cert


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime.now(UTC))


@pytest.fixture
def ca(tmp_path: Path, clock: FixedClock) -> CertificateAuthority:
    return CertificateAuthority.init(tmp_path / "ca", clock)


@pytest.fixture
def server_cert(tmp_path: Path, ca: CertificateAuthority, clock: FixedClock) -> CertFiles:
    issued = ca.issue("api", Role.GATEWAY, clock, hosts=("localhost", "127.0.0.1"))
    return write_cert(tmp_path / "certs", issued)


@pytest.fixture
def operator_cert(tmp_path: Path, ca: CertificateAuthority, clock: FixedClock) -> CertFiles:
    return write_cert(tmp_path / "certs", ca.issue("alice", Role.OPERATOR, clock))
