"""Tool calls and the decisions taken on them."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, model_validator

from ._base import Frozen


class RiskTier(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _TIER_RANK[self]


_TIER_RANK = {RiskTier.LOW: 0, RiskTier.MEDIUM: 1, RiskTier.HIGH: 2, RiskTier.CRITICAL: 3}


class Category(StrEnum):
    """Sensitive-action categories: a call in one of these needs policy consent or a human."""

    EXFILTRATION = "exfiltration"
    CREDENTIALS = "credentials"
    FINANCIAL = "financial"
    PERMISSION_GRANT = "permission_grant"
    CONFIG_CHANGE = "config_change"
    FILE_ACCESS = "file_access"
    NEW_NETWORK_DOMAIN = "new_network_domain"


class ToolCall(Frozen):
    """One MCP ``tools/call`` as the gateway sees it, after authentication."""

    server: str = Field(min_length=1)
    tool: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)
    client: str = "anonymous"
    session: str = ""


DecisionKind = Literal["allow", "deny", "require_approval"]


class Decision(Frozen):
    """``allow``, ``deny(reason)`` or ``require_approval(reason, category)``.

    ``rule`` names the policy rule that decided (for the trace); ``tier`` is the risk tier applied.
    """

    kind: DecisionKind
    reason: str = ""
    category: Category | None = None
    rule: str = ""
    tier: RiskTier | None = None

    @model_validator(mode="after")
    def _check(self) -> Decision:
        if self.kind == "deny" and not self.reason:
            raise ValueError("a deny decision needs a reason")
        if self.kind == "require_approval" and (not self.reason or self.category is None):
            raise ValueError("require_approval needs a reason and a category")
        return self

    @classmethod
    def allow(cls, reason: str = "", *, rule: str = "", tier: RiskTier | None = None) -> Decision:
        return cls(kind="allow", reason=reason, rule=rule, tier=tier)

    @classmethod
    def deny(cls, reason: str, *, rule: str = "", tier: RiskTier | None = None) -> Decision:
        return cls(kind="deny", reason=reason, rule=rule, tier=tier)

    @classmethod
    def require_approval(
        cls, reason: str, category: Category, *, rule: str = "", tier: RiskTier | None = None
    ) -> Decision:
        return cls(kind="require_approval", reason=reason, category=category, rule=rule, tier=tier)

    @property
    def allowed(self) -> bool:
        return self.kind == "allow"
