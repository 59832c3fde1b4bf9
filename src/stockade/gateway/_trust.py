"""Trust tagging of tool results: every result is UNTRUSTED content.

Text is sanitised with :func:`stockade.textsafe.safe_text` (terminal escapes, invisible and bidi
characters become visible markers), wrapped in an ``<untrusted-tool-output>`` envelope whose closing
tag cannot be forged from inside, bounded in size, and the result carries
``_meta["stockade/trust"] = "untrusted"`` so clients can tell it apart programmatically.
"""

from __future__ import annotations

import re
from typing import Any

from stockade.textsafe import safe_text

__all__ = ["TRUST_META_KEY", "tag_result"]

TRUST_META_KEY = "stockade/trust"
_ENVELOPE = re.compile(r"<\s*/?\s*untrusted-tool-output", re.IGNORECASE)
_OPEN = '<untrusted-tool-output source="{source}">'
_CLOSE = "</untrusted-tool-output>"
_PASS_THROUGH = {"image", "audio", "resource_link"}


def _clean(text: str, limit: int) -> str:
    text = safe_text(text, limit=limit)
    return _ENVELOPE.sub("<\u2039untrusted-tool-output", text)


def _clean_json(value: Any, limit: int) -> Any:
    if isinstance(value, str):
        return safe_text(value, limit=limit)
    if isinstance(value, dict):
        return {safe_text(str(k), limit=200): _clean_json(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean_json(v, limit) for v in value]
    return value


def tag_result(result: dict[str, Any], *, source: str, limit: int = 65536) -> dict[str, Any]:
    """A new result: sanitised, wrapped, size-bounded and marked untrusted. Never mutates input."""
    content_in = result.get("content")
    blocks: list[dict[str, Any]] = []
    dropped = 0
    budget = limit
    for block in content_in if isinstance(content_in, list) else []:
        if not isinstance(block, dict):
            dropped += 1
            continue
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            text = _clean(block["text"], max(budget, 0))
            budget -= len(text)
            blocks.append(
                {
                    "type": "text",
                    "text": f"{_OPEN.format(source=source)}\n{text}\n{_CLOSE}",
                }
            )
        elif kind == "resource" and isinstance(block.get("resource"), dict):
            raw = block["resource"]
            res: dict[str, Any] = {
                "uri": safe_text(str(raw.get("uri", "")), single_line=True, limit=2048)
            }
            if isinstance(raw.get("mimeType"), str):
                res["mimeType"] = safe_text(raw["mimeType"], single_line=True, limit=200)
            if isinstance(raw.get("text"), str):
                res["text"] = _clean(raw["text"], max(budget, 0))
                budget -= len(res["text"])
            elif isinstance(raw.get("blob"), str):
                res["blob"] = raw["blob"]
            blocks.append({"type": "resource", "resource": res})
        elif kind in _PASS_THROUGH:
            blocks.append(_clean_json(block, limit))
        else:
            dropped += 1
    if dropped:
        blocks.append(
            {"type": "text", "text": f"[stockade: {dropped} unsupported content block(s) removed]"}
        )
    out: dict[str, Any] = {"content": blocks, "isError": bool(result.get("isError", False))}
    if isinstance(result.get("structuredContent"), dict):
        out["structuredContent"] = _clean_json(result["structuredContent"], limit)
    out["_meta"] = {TRUST_META_KEY: "untrusted", "stockade/source": source}
    return out
