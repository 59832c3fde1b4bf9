"""Credentials never reach the log: marked secret values, credential shapes and credential keys."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stockade.audit import GENESIS, PATTERNS, AuditLog, Redactor, canonical, seal_event
from stockade.errors import AuditError

from ._helpers import KEYS

# Built by concatenation so secret scanners do not flag the test file itself.
FAKES = {
    "aws_access_key": "AKIA" + "IOSFODNN7EXAMPLE",
    "github_token": "gh" + "p_" + "A1b2" * 9,
    "github_pat": "github" + "_pat_" + "11AAAAAAA0" + "x" * 40,
    "gho": "gh" + "o_" + "Z" * 36,
    "slack_token": "xo" + "xb-" + "1234567890-abcdefghij",
    "google_api_key": "AI" + "za" + "Sy" + "D" * 33,  # pragma: allowlist secret
    "jwt": "ey" + "JhbGciOiJIUzI1NiJ9." + "ey" + "JzdWIiOiIxIn0." + "sig_nature-123",
    "npm_token": "np" + "m_" + "a1" * 18,
    "stripe_key": "sk" + "_live_" + "4eC39HqLyjWDarjtT1zdp7dc",
    "sk_key": "sk" + "-ant-api03-" + "q" * 40,
    "openai": "sk" + "-proj-" + "R" * 40,
}
PEM = (
    "-----BEGIN "
    + "PRIVATE KEY-----\nMIIEvQIBADANBgkq\nhkiG9w0BAQEFAASC\n-----END "
    + ("PRIVATE KEY-----")
)


@pytest.mark.guarantee("audit-redaction")
@pytest.mark.parametrize("name", sorted(FAKES))
def test_credential_shapes_are_redacted_inside_text(name: str) -> None:
    out = Redactor().text(f"before {FAKES[name]} after")
    assert FAKES[name] not in out
    assert out.startswith("before [REDACTED:")
    assert out.endswith("] after")


@pytest.mark.guarantee("audit-redaction")
@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("Authorization: Bearer abc.def-ghi_jkl", "Authorization: Bearer [REDACTED:bearer]"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: Basic [REDACTED:basic_auth]"),
        ("password=hunter22&user=bob", "password=[REDACTED:assignment]&user=bob"),
        (
            '{"api_key": "abc123xyz"}',  # pragma: allowlist secret
            '{"api_key": "[REDACTED:assignment]"}',
        ),
        ("API-KEY: zzz999", "API-KEY: [REDACTED:assignment]"),
        (
            "https://bob:s3cr3t@db.example.test/x",  # pragma: allowlist secret
            "https://bob:[REDACTED:url_credentials]@db.example.test/x",
        ),
        (f"key:\n{PEM}\nrest", "key:\n[REDACTED:private_key]\nrest"),
    ],
)
def test_contextual_credentials_are_redacted_and_context_kept(text: str, kept: str) -> None:
    assert Redactor().text(text) == kept


def test_a_truncated_private_key_block_is_redacted_to_the_end() -> None:
    out = Redactor().text("x -----BEGIN RSA PRIVATE KEY-----\nMIIabc\nmore")
    assert out == "x [REDACTED:private_key]"


def test_ordinary_text_is_left_alone() -> None:
    text = "fetched https://example.test/page: 200 OK, 5123 bytes, tokens used: 17"
    assert Redactor().text(text) == text


@pytest.mark.guarantee("audit-redaction")
@pytest.mark.parametrize(
    "key",
    [
        "password",
        "Passwd",
        "client_secret",
        "X-Auth-Token",
        "Authorization",
        "api_key",
        "apiKey",
        "private-key",
        "aws_access_key_id",
        "cookie",
    ],
)
def test_values_under_credential_keys_are_redacted_whatever_they_hold(key: str) -> None:
    out = Redactor().data({key: {"nested": ["plain", 1]}, "other": "plain"})
    assert out["other"] == "plain"
    assert re.fullmatch(r"\[REDACTED:[a-z]+\]", out[key])


@pytest.mark.guarantee("audit-redaction")
def test_marked_secrets_are_redacted_in_values_keys_and_nested_containers() -> None:
    r = Redactor({"s3cret-Value"})
    out = r.data({"a": ["x s3cret-Value y", {"s3cret-Value": ("s3cret-Values",)}]})
    assert out == {"a": ["x [REDACTED:secret] y", {"[REDACTED:secret]": ["[REDACTED:secret]s"]}]}


def test_secrets_added_later_apply_to_later_data() -> None:
    r = Redactor()
    assert r.text("abcdef") == "abcdef"
    r.add_secrets(["cde", ""])
    assert r.text("abcdef") == "ab[REDACTED:secret]f"
    assert r.secrets == frozenset({"cde"})


def test_keys_that_redact_to_the_same_text_are_both_kept() -> None:
    out = Redactor({"AAAA", "BBBB"}).data({"k-AAAA": 1, "k-BBBB": 2})
    assert sorted(out.values()) == [1, 2]
    assert len(out) == 2


@pytest.mark.parametrize("bad", [{1: "x"}, {"x": b"bytes"}, {"x": float("nan")}, {"x": {1, 2}}])
def test_data_that_is_not_plain_json_is_refused(bad: dict[object, object]) -> None:
    with pytest.raises(AuditError):
        Redactor().data(bad)


def test_data_nested_absurdly_deep_is_refused() -> None:
    deep: object = "x"
    for _ in range(100):
        deep = [deep]
    with pytest.raises(AuditError, match="deeper"):
        Redactor().data({"d": deep})


def test_every_pattern_has_a_credential_group() -> None:
    for kind, rx in PATTERNS:
        assert "s" in rx.groupindex, kind


SENTINEL = "\uffff"
alphabet = st.characters(codec="utf-8", exclude_characters=SENTINEL)
secrets_st = st.text(alphabet, min_size=4, max_size=24)


def _embed(secret: str) -> st.SearchStrategy[object]:
    """JSON-like data where the secret is embedded in strings and keys, at any depth."""
    carrier = st.tuples(st.text(alphabet, max_size=6), st.text(alphabet, max_size=6)).map(
        lambda ab: ab[0] + secret + ab[1]
    )
    leaf = carrier | st.text(alphabet, max_size=8) | st.integers() | st.none()
    return st.recursive(
        leaf,
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(carrier | st.text(alphabet, max_size=6), inner, max_size=3)
        ),
        max_leaves=12,
    )


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *_strings(v)]]
    return []


@pytest.mark.guarantee("audit-redaction")
@given(st.data(), st.lists(secrets_st, min_size=1, max_size=3))
def test_a_marked_secret_never_reaches_the_written_line(
    data: st.DataObject, secrets: list[str]
) -> None:
    payload = {"payload": data.draw(_embed(secrets[0])), "also": secrets[-1] + "!"}
    clean = Redactor(secrets).data(payload)
    _, line = seal_event(seq=0, ts="t", type="x", data=clean, prev=GENESIS, hmac_key=b"k" * 32)
    written = json.loads(line)["data"]
    for s in _strings(written):
        visible = re.sub(r"\[REDACTED:[a-z_]+\]", SENTINEL, s)
        for secret in secrets:
            assert secret not in visible
    ascii_secrets = [s for s in secrets if s.isascii() and '"' not in s and "\\" not in s]
    data_bytes = canonical(written)  # exactly the bytes of the data field in the line
    assert data_bytes in line
    # Literal characters only: markers and JSON escapes (\u0000, \n, ...) become separators.
    literal = re.sub(rb"\[REDACTED:[a-z_]+\]|\\u[0-9a-f]{4}|\\.", b"\xff", data_bytes)
    for secret in ascii_secrets:
        assert secret.encode() not in literal


@pytest.mark.guarantee("audit-redaction")
@settings(max_examples=40)
@given(st.data(), secrets_st)
def test_a_marked_secret_never_reaches_the_file_through_the_sink(
    data: st.DataObject, secret: str
) -> None:
    payload = data.draw(st.dictionaries(st.text(alphabet, max_size=6), _embed(secret), max_size=3))
    wrap = data.draw(st.tuples(st.text(alphabet, max_size=4), st.text(alphabet, max_size=4)))
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "audit.jsonl"
        with AuditLog.open(path, keys=KEYS, fsync="never", secrets={secret}) as log:
            log.append("t", payload, run_id=wrap[0] + secret + wrap[1], session_id=secret)
        written = json.loads(path.read_bytes().split(b"\n")[0])
    for s in [written["run_id"], written["session_id"], *_strings(written["data"])]:
        assert secret not in re.sub(r"\[REDACTED:[a-z_]+\]", SENTINEL, s)
