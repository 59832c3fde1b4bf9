"""Scan tool definitions for instruction-like content aimed at the model (tool poisoning).

Findings do not block on their own: they are shown at approval time and recorded with the pin.
The scan is heuristic by nature; a clean scan is not proof of a benign tool.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any, Literal

from stockade.models import Frozen
from stockade.textsafe import find_hidden

__all__ = ["Finding", "scan_tool"]

Kind = Literal["hidden-tag", "sensitive-path", "secrecy", "cross-tool", "invisible-unicode"]

_HIDDEN_TAG = re.compile(
    r"<\s*/?\s*(important|system|instructions?|secret|hidden|admin|assistant|prompt|context)\b[^>]*>",
    re.IGNORECASE,
)
_SENSITIVE = re.compile(
    r"(~/\.ssh|\.ssh/|id_rsa|id_ed25519|\.aws/credentials|\.env\b|\.netrc|\.npmrc|\.pypirc|"
    r"\.kube/config|\.docker/config|/etc/passwd|/etc/shadow|mcp\.json|\.cursor/|"
    r"claude_desktop_config|private[ _-]?key|api[ _-]?key|access[ _-]?token|password)",
    re.IGNORECASE,
)
_SECRECY = re.compile(
    r"(do not (tell|mention|inform|reveal)|don't (tell|mention|inform|reveal)|without (telling|"
    r"informing)|ignore (all |any )?(previous|prior|above) instructions|before using this tool|"
    r"instead of|you must (first )?(read|call|send|include)|the user (must not|should not) know)",
    re.IGNORECASE,
)


class Finding(Frozen):
    """One suspicious thing in a definition: where (a JSON path) and what, quoted safely."""

    kind: Kind
    where: str
    detail: str


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield f"{path}.{k}", str(k)
            yield from _strings(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, f"{path}[{i}]")


def scan_tool(tool: dict[str, Any], other_tools: Iterable[str] = ()) -> tuple[Finding, ...]:
    """All findings for one tool definition; ``other_tools`` are names offered by other servers."""
    own = str(tool.get("name", ""))
    others = sorted({t for t in other_tools if t and t != own and len(t) >= 3})
    findings: list[Finding] = []
    seen: set[tuple[str, str, str]] = set()

    def add(kind: Kind, where: str, detail: str) -> None:
        key = (kind, where, detail)
        if key not in seen:
            seen.add(key)
            findings.append(Finding(kind=kind, where=where, detail=detail[:200]))

    for where, text in _strings(tool, "$"):
        hidden = find_hidden(text)
        if hidden:
            add("invisible-unicode", where, ", ".join(hidden[:8]))
        for m in _HIDDEN_TAG.finditer(text):
            add("hidden-tag", where, m.group(0))
        for m in _SENSITIVE.finditer(text):
            add("sensitive-path", where, m.group(0))
        for m in _SECRECY.finditer(text):
            add("secrecy", where, m.group(0))
        if where.startswith("$.name"):
            continue
        for other in others:
            if re.search(rf"(?<![A-Za-z0-9_-]){re.escape(other)}(?![A-Za-z0-9_-])", text):
                add("cross-tool", where, other)
    return tuple(findings)
