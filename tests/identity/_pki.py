from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from stockade.identity import IssuedCertificate


@dataclass
class FixedClock:
    t: datetime

    def now(self) -> datetime:
        return self.t

    def advance(self, d: timedelta) -> None:
        self.t += d


@dataclass(frozen=True)
class CertFiles:
    cert: Path
    key: Path
    issued: IssuedCertificate


def write_cert(directory: Path, issued: IssuedCertificate) -> CertFiles:
    directory.mkdir(parents=True, exist_ok=True)
    cert = directory / f"{issued.name}.pem"
    key = directory / f"{issued.name}.key"
    cert.write_bytes(issued.cert_pem)
    key.write_bytes(issued.key_pem)
    key.chmod(0o600)
    return CertFiles(cert, key, issued)
