"""Canonical JSON and the hash that pins a tool's full definition."""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["canonical_json", "definition_hash"]


def canonical_json(value: Any) -> bytes:
    """Deterministic JSON: sorted keys, no whitespace, UTF-8, no NaN/Infinity."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def definition_hash(tool: dict[str, Any]) -> str:
    """``sha256:<hex>`` over the canonical JSON of the *whole* tool definition.

    Every field counts (name, title, description, input/output schemas, annotations, and anything
    else the server sends): a change anywhere is a change of definition.
    """
    return "sha256:" + hashlib.sha256(canonical_json(tool)).hexdigest()
