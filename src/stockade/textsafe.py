"""Neutralise untrusted text before it reaches a terminal or a log line.

Tool descriptions, arguments, results, workload logs and policy strings are attacker-controlled.
:func:`safe_text` removes terminal control sequences (CSI, OSC, DCS, APC, PM, SOS and lone ESC),
C0/C1 control characters (keeping newline and tab unless ``single_line``), and invisible or
bidirectional-override characters (Trojan Source), replacing each with a visible marker so the
reader can tell something was removed.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["find_hidden", "safe_text"]

# ESC-introduced sequences: CSI (ESC [ ... final), OSC/DCS/SOS/PM/APC (ESC ] ... BEL or ST),
# and two-character escapes. Also the 8-bit C1 forms (U+009B CSI, U+009D OSC, ...).
_ESC_SEQ = re.compile(
    r"""
    (?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?                    # CSI
  | (?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f]).*?(?:\x07|\x1b\\|\x9c|$)  # OSC, DCS, SOS, PM, APC
  | \x1b[ -/]*[0-~]?                                      # other ESC sequences / lone ESC
    """,
    re.VERBOSE | re.DOTALL,
)

# Invisible and bidi-control code points (format characters that change rendering or hide text).
_BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
_INVISIBLE = set("\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff\u00ad\u180e\u034f")


def _is_hidden(ch: str) -> bool:
    if ch in _BIDI or ch in _INVISIBLE:
        return True
    cp = ord(ch)
    if 0xE0000 <= cp <= 0xE007F:  # Unicode "tag" characters (ASCII smuggling)
        return True
    if 0xFE00 <= cp <= 0xFE0F or 0xE0100 <= cp <= 0xE01EF:  # variation selectors
        return True
    return unicodedata.category(ch) == "Cf"


def find_hidden(text: str) -> list[str]:
    """Names of the hidden/bidi/control characters present in ``text`` (for findings)."""
    found: list[str] = []
    for ch in text:
        if _is_hidden(ch) or (unicodedata.category(ch) == "Cc" and ch not in "\n\t"):
            name = unicodedata.name(ch, f"U+{ord(ch):04X}")
            if name not in found:
                found.append(name)
    return found


def safe_text(text: str, *, single_line: bool = False, limit: int | None = None) -> str:
    """Return ``text`` with control sequences and hidden characters made visible and inert."""
    out = _ESC_SEQ.sub("\ufffd", text)
    chars: list[str] = []
    for ch in out:
        if ch in {"\n", "\t"}:
            chars.append(" " if single_line else ch)
        elif unicodedata.category(ch) == "Cc" or _is_hidden(ch):
            chars.append(f"<U+{ord(ch):04X}>")
        else:
            chars.append(ch)
    result = "".join(chars)
    if limit is not None and len(result) > limit:
        result = result[:limit] + "…"
    return result
