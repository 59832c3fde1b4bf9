"""The exact call an approval is bound to, and its digest (pure).

The digest covers the server, the image digest it runs, the tool, the canonical arguments, the
effective policy hash and the session: an approval for one call can never be spent on another,
under another policy, from another session, or against a different image.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import Field

from stockade.errors import ApprovalError
from stockade.models import Frozen, ToolCall

__all__ = ["CallBinding", "canonical_arguments"]

_DOMAIN = "stockade.approval.v1"


def canonical_arguments(arguments: dict[str, Any]) -> str:
    """Sorted keys, no whitespace, UTF-8 as text; NaN/Infinity and non-JSON values refused."""
    try:
        return json.dumps(
            arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as e:
        raise ApprovalError(
            f"tool arguments are not canonical JSON: {e}",
            "only JSON values (no NaN/Infinity) can be approved",
        ) from e


class CallBinding(Frozen):
    """What an approval covers. Two calls share a digest only if every field is equal."""

    server: str = Field(min_length=1)
    image_digest: str = ""
    tool: str = Field(min_length=1)
    arguments: str
    policy_hash: str = Field(min_length=1)
    session: str = ""

    @classmethod
    def of(cls, call: ToolCall, *, image_digest: str | None, policy_hash: str) -> CallBinding:
        return cls(
            server=call.server,
            image_digest=image_digest or "",
            tool=call.tool,
            arguments=canonical_arguments(call.arguments),
            policy_hash=policy_hash,
            session=call.session,
        )

    @property
    def digest(self) -> str:
        # Length-prefixed fields under a domain tag: no two field tuples share an encoding.
        h = hashlib.sha256(_DOMAIN.encode())
        for value in (
            self.server,
            self.image_digest,
            self.tool,
            self.arguments,
            self.policy_hash,
            self.session,
        ):
            raw = value.encode("utf-8")
            h.update(len(raw).to_bytes(8, "big"))
            h.update(raw)
        return "sha256:" + h.hexdigest()
