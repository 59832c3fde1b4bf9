"""Shared helpers of the policy tests (imported as a plain module: tests/ has no packages)."""

from __future__ import annotations

from collections.abc import Callable

from stockade.policy import CheckResult, Policy

Writer = Callable[[str], CheckResult]


def messages(result: CheckResult) -> list[str]:
    return [f"{p.line}:{p.col}: {p.message} (fix: {p.fix})" for p in result.errors]


def valid(result: CheckResult) -> Policy:
    assert result.ok, messages(result)
    assert result.policy is not None
    return result.policy


MINIMAL = """\
version: 1
default: deny
servers:
  - name: s
    command: [node, server.js]
"""


def make_policy(servers: list[dict[str, object]], **top: object) -> Policy:
    """A Policy built in memory from plain data (validated exactly like a file)."""
    import json

    from stockade.policy import PolicyDoc

    doc = PolicyDoc.model_validate_json(
        json.dumps({"version": 1, "default": "deny", "servers": servers, **top})
    )
    return Policy.from_doc(doc)


def with_rules(*rules: dict[str, object], name: str = "s") -> Policy:
    return make_policy([{"name": name, "command": ["x"], "tools": {"rules": list(rules)}}])
