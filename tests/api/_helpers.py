from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from starlette.testclient import TestClient

from stockade.api import PEER_SCOPE_KEY, ControlPlane, build_app, with_peer
from stockade.identity import IssuedCertificate, PeerIdentity, Role
from stockade.models import RunRecord
from stockade.store import RunStore

__all__ = [
    "PEER_SCOPE_KEY",
    "CertFiles",
    "FixedClock",
    "client_for",
    "peer",
    "record",
    "store_opener",
    "write_cert",
]

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@dataclass
class FixedClock:
    t: datetime

    def now(self) -> datetime:
        return self.t

    def advance(self, d: timedelta) -> None:
        self.t += d


def peer(role: Role, name: str = "alice") -> PeerIdentity:
    return PeerIdentity(name=name, role=role, serial=1, not_after=T0 + timedelta(days=1))


def record(run_id: str = "r1", **kw: object) -> RunRecord:
    base: dict[str, object] = {
        "run_id": run_id,
        "workload": "python3 -c pass",
        "backend": "gvisor",
        "policy_hash": "sha256:" + "a" * 64,
        "created_at": T0,
    }
    base.update(kw)
    return RunRecord.model_validate(base)


def store_opener(path: Path) -> Callable[[], RunStore]:
    return lambda: RunStore.open(path)


def client_for(cp: ControlPlane, who: PeerIdentity | None) -> TestClient:
    return TestClient(with_peer(build_app(cp), who), base_url="https://testserver")


@dataclass(frozen=True)
class CertFiles:
    cert: Path
    key: Path
    issued: IssuedCertificate


def write_cert(directory: Path, issued: IssuedCertificate) -> CertFiles:
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{issued.name}.pem", directory / f"{issued.name}.key"
    cert.write_bytes(issued.cert_pem)
    key.write_bytes(issued.key_pem)
    key.chmod(0o600)
    return CertFiles(cert, key, issued)
