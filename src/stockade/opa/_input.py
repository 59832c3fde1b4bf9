"""The input document stockade sends to Rego, and the answer it expects back.

Input (``input`` in Rego), the same call and context the built-in engine sees::

    {"version": 1, "question": "tool_call", "client": "alice", "server": "fetch",
     "image_digest": "sha256:...", "tool": "fetch", "arguments": {...},
     "categories": ["exfiltration"], "tainted": true, "provenance": ["fetch:fetch"],
     "session": "s1", "policy_hash": "sha256:...", "extra": {}}

Answer (the value at the query path)::

    {"result": "allow" | "deny" | "require_approval", "reason": "...", "category": "..."}

Anything else (undefined, another type, an unknown result, a deny without a reason, an approval
without a known category) is a malformed answer, and a malformed answer denies.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from stockade.models import Category, Decision, Frozen, ToolCall

__all__ = ["QUESTIONS", "OpaInput", "Question", "decision_from_answer"]

Question = Literal[
    "tool_call", "task", "server_access", "secret_access", "delegation", "data_access"
]
QUESTIONS: tuple[str, ...] = (
    "tool_call",
    "task",
    "server_access",
    "secret_access",
    "delegation",
    "data_access",
)


class OpaInput(Frozen):
    version: Literal[1] = 1
    question: Question
    client: str
    server: str
    tool: str = ""
    arguments: dict[str, Any] = Field(default_factory=dict)
    image_digest: str | None = None
    categories: tuple[str, ...] = ()
    tainted: bool = False
    provenance: tuple[str, ...] = ()
    session: str = ""
    policy_hash: str = ""
    extra: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def for_call(
        cls,
        call: ToolCall,
        *,
        image_digest: str | None = None,
        categories: tuple[Category, ...] = (),
        tainted: bool = False,
        provenance: tuple[str, ...] = (),
        policy_hash: str = "",
    ) -> OpaInput:
        return cls(
            question="tool_call",
            client=call.client,
            server=call.server,
            tool=call.tool,
            arguments=call.arguments,
            image_digest=image_digest,
            categories=tuple(c.value for c in categories),
            tainted=tainted,
            provenance=provenance,
            session=call.session,
            policy_hash=policy_hash,
        )


def decision_from_answer(answer: object, rule: str) -> Decision:
    """Map an answer to a :class:`Decision`; any malformed answer denies with what was wrong."""

    def bad(what: str) -> Decision:
        return Decision.deny(f"OPA answer at {rule} is malformed ({what}): denied", rule=rule)

    if not isinstance(answer, dict):
        return bad(f"got {type(answer).__name__}, expected an object")
    result, reason = answer.get("result"), answer.get("reason", "")
    if not isinstance(reason, str):
        return bad("reason is not a string")
    extra = set(answer) - {"result", "reason", "category"}
    if extra:
        return bad(f"unknown fields {sorted(extra)}")
    if result == "allow":
        return Decision.allow(reason or "allowed by OPA", rule=rule)
    if result == "deny":
        return Decision.deny(reason or "denied by OPA", rule=rule)
    if result == "require_approval":
        try:
            category = Category(str(answer.get("category")))
        except ValueError:
            return bad("require_approval without a known category")
        return Decision.require_approval(reason or "OPA asks for approval", category, rule=rule)
    return bad(f"result {result!r}, expected allow, deny or require_approval")
