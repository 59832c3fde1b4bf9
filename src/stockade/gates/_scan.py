"""Secret scanning of logs, traces and evidence: detect-secrets' pattern detectors, stockade run
tokens, and the policy's own secret values (exact, and as they would appear JSON-escaped).

High-entropy and keyword detectors are left out on purpose: audit lines are full of hashes and
MACs, and a gate that always fails is a gate nobody runs. Findings never include the value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from stockade.models import Frozen

__all__ = ["SecretFinding", "scan_text"]

_EXCLUDED = {
    "Base64HighEntropyString",
    "HexHighEntropyString",
    "KeywordDetector",
    "IPPublicDetector",
}
_RUN_TOKEN = re.compile(r"stk1\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{20,}")
MIN_SECRET_LEN = 6


class SecretFinding(Frozen):
    source: str
    line: int
    kind: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.kind}"


def _plugins() -> list[dict[str, str]]:
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

    mapping: dict[str, type] = get_mapping_from_secret_type_to_class()
    names = {cls.__name__ for cls in mapping.values()}
    return [{"name": n} for n in sorted(names - _EXCLUDED)]


def _variants(values: Iterable[str]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for i, v in enumerate(sorted(set(values))):
        if len(v) < MIN_SECRET_LEN:
            continue
        out.append((v, f"policy secret #{i + 1}"))
        escaped = json.dumps(v)[1:-1]
        if escaped != v:
            out.append((escaped, f"policy secret #{i + 1} (JSON-escaped)"))
    return out


def scan_text(source: str, text: str, secret_values: Iterable[str] = ()) -> list[SecretFinding]:
    """Every line of ``text`` that carries a detectable secret (one finding per kind per line)."""
    from detect_secrets.core.scan import scan_line
    from detect_secrets.settings import transient_settings

    known = _variants(secret_values)
    findings: list[SecretFinding] = []
    with transient_settings({"plugins_used": _plugins()}):
        for n, line in enumerate(text.splitlines(), 1):
            kinds = {s.type for s in scan_line(line)}
            if _RUN_TOKEN.search(line):
                kinds.add("stockade run token")
            kinds.update(label for value, label in known if value in line)
            findings.extend(SecretFinding(source=source, line=n, kind=k) for k in sorted(kinds))
    return findings
