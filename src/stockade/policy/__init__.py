"""Policy: the file format, its strict loader, the effective-policy hash and the decision engine.

See docs/policy.md for every field, its safe default and the decision semantics.
"""

from ._engine import DecisionContext, DecisionEngine, decide
from ._loader import CheckResult, check_policy, load_policy, parse_policy
from ._patterns import domain_matches, image_repository, registry_matches
from ._policy import Policy, canonical_json, effective_hash
from ._problems import PolicyLoadError, Problem
from ._ratelimit import PRUNE_ABOVE, Bucket, RateState, take
from ._resolve import MOUNT_FLAGS, Mount
from ._schema import (
    LIMITS,
    Approvals,
    ClientRule,
    FsEntry,
    NetworkSpec,
    PolicyDoc,
    ServerPolicy,
)
from ._signatures import ApprovedBaseSpec, IdentitySpec, SignatureRuleSpec, SignaturesPolicy
from ._tools import ArgumentRule, Arguments, RateLimit, ToolRule, ToolsPolicy
from ._yaml import MAX_BYTES, MAX_DEPTH

__all__ = [
    "LIMITS",
    "MAX_BYTES",
    "MAX_DEPTH",
    "MOUNT_FLAGS",
    "PRUNE_ABOVE",
    "Approvals",
    "ApprovedBaseSpec",
    "ArgumentRule",
    "Arguments",
    "Bucket",
    "CheckResult",
    "ClientRule",
    "DecisionContext",
    "DecisionEngine",
    "FsEntry",
    "IdentitySpec",
    "Mount",
    "NetworkSpec",
    "Policy",
    "PolicyDoc",
    "PolicyLoadError",
    "Problem",
    "RateLimit",
    "RateState",
    "ServerPolicy",
    "SignatureRuleSpec",
    "SignaturesPolicy",
    "ToolRule",
    "ToolsPolicy",
    "canonical_json",
    "check_policy",
    "decide",
    "domain_matches",
    "effective_hash",
    "image_repository",
    "load_policy",
    "parse_policy",
    "registry_matches",
    "take",
]
