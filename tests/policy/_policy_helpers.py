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
