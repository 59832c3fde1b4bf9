from __future__ import annotations

import string
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stockade.textsafe import find_hidden, safe_text

BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f"


def _clean(out: str, *, allow_newline: bool = True) -> bool:
    for ch in out:
        if ch in "\n\t":
            if not allow_newline:
                return False
            continue
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cf"):
            return False
    return True


@pytest.mark.guarantee("terminal-safe-output")
@pytest.mark.parametrize(
    "attack",
    [
        "\x1b[2J\x1b[Hfake prompt $ ",  # clear screen
        "\x1b]0;owned\x07",  # OSC window title
        "\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\",  # OSC 8 hyperlink
        "\x1bP+q\x1b\\",  # DCS
        "\x9b31mred",  # 8-bit CSI
        "\x9d0;title\x9c",  # 8-bit OSC
        "ok\rOVERWRITE",  # carriage return overwrite
        "a\x08\x08b",  # backspaces
        "access \u202egnp.exe",  # right-to-left override
        "hi\u200bdden\u2060",  # zero width
        "tag\U000e0041\U000e0042",  # unicode tag characters (ASCII smuggling)
    ],
)
def test_known_terminal_attacks_are_neutralised(attack: str) -> None:
    out = safe_text(attack)
    assert "\x1b" not in out
    assert _clean(out)


@pytest.mark.guarantee("terminal-safe-output")
@given(st.text())
def test_no_output_contains_control_or_format_characters(text: str) -> None:
    assert _clean(safe_text(text))
    assert _clean(safe_text(text, single_line=True), allow_newline=False)


@given(st.text(alphabet=string.printable.replace("\r", "").replace("\x0b", "").replace("\x0c", "")))
def test_plain_printable_text_is_unchanged(text: str) -> None:
    assert safe_text(text) == text


def test_removed_characters_are_made_visible() -> None:
    assert safe_text("a\u202eb") == "a<U+202E>b"
    assert safe_text("x\x1b[31my") == "x\ufffdy"


def test_limit_truncates_with_an_ellipsis() -> None:
    assert safe_text("abcdef", limit=3) == "abc…"


def test_find_hidden_names_each_hidden_character_once() -> None:
    found = find_hidden("a\u202eb\u202ec\u200b")
    assert found == ["RIGHT-TO-LEFT OVERRIDE", "ZERO WIDTH SPACE"]
    assert find_hidden("plain text\n") == []
    assert all(ch not in safe_text(BIDI) for ch in BIDI)
