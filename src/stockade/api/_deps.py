"""What the control API is wired to: the store, audit log, policy hash, tokens, readiness checks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from stockade.approvals import ApprovalStore
from stockade.gates._audit import AuditTarget
from stockade.identity import CrlWatcher, TokenAuthority
from stockade.models import Clock
from stockade.policy import Policy, RateLimit
from stockade.secrets import SecretStore
from stockade.store import RunStore

__all__ = ["ControlPlane", "ReadinessCheck", "RunStopper"]

#: A readiness probe returns a short detail on success and raises StockadeError on failure.
ReadinessCheck = Callable[[], str]


class RunStopper(Protocol):
    def stop(self, run_id: str, by: str) -> str: ...


@dataclass(frozen=True)
class ControlPlane:
    """Everything the app needs, injected. ``open_store`` opens a fresh connection per request."""

    open_store: Callable[[], RunStore]
    clock: Clock
    stopper: RunStopper
    policy_hash: str | None = None
    audit: AuditTarget | None = None
    tokens: TokenAuthority | None = None
    approvals: ApprovalStore | None = None
    policy: Policy | None = None
    secrets: SecretStore | None = None
    crl: CrlWatcher | None = None
    readiness: Mapping[str, ReadinessCheck] = field(default_factory=dict)
    identity_limit: RateLimit = field(default_factory=lambda: RateLimit(rate=120, per=60))
    run_limit: RateLimit = field(default_factory=lambda: RateLimit(rate=60, per=60))
    max_body_bytes: int = 16 * 1024
