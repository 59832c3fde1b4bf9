"""Pure core: redact credentials from audit data before it is written.

Three passes over every string (dict keys included), in this order:

1. exact secret values the caller marks secret (e.g. the policy's secrets fetched from the secret
   store): every occurrence, as a substring, becomes ``[REDACTED:secret]``;
2. common credential shapes (:data:`PATTERNS`): AWS access key ids, GitHub, Slack, npm, Stripe,
   OpenAI/Anthropic-style ``sk-`` keys, Google API keys, JWTs, PEM private keys,
   ``Bearer``/``Basic`` authorization values, credentials in URLs and
   ``password=``/``api_key=``-style assignments;
3. a dict value whose key names a credential (``password``, ``token``, ``secret``,
   ``authorization``, ``api_key``, ...) is replaced whole, whatever it holds.

The result contains only plain JSON types (tuples become lists); anything else is refused.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable
from typing import Any

from stockade.errors import AuditError

__all__ = ["PATTERNS", "Redactor", "marker"]


def marker(kind: str) -> str:
    return f"[REDACTED:{kind}]"


# Each pattern redacts its named group ``s`` (the credential), keeping any context around it.
PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(rx))
    for kind, rx in (
        (
            "private_key",
            r"(?P<s>-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----(?:.|\n)*?"
            r"(?:-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----|\Z))",
        ),
        (
            "aws_access_key",
            r"(?<![A-Z0-9])(?P<s>(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA)"
            r"[A-Z0-9]{16})(?![A-Z0-9])",
        ),
        (
            "github_token",
            r"(?P<s>\b(?:gh[pousr]_[A-Za-z0-9]{20,255}|github_pat_[A-Za-z0-9_]{20,255}))",
        ),
        ("slack_token", r"(?P<s>\bxox[abposre]-[A-Za-z0-9-]{8,})"),
        ("slack_webhook", r"(?P<s>https://hooks\.slack\.com/services/[A-Za-z0-9/_-]+)"),
        ("google_api_key", r"(?P<s>\bAIza[0-9A-Za-z_-]{30,})"),
        ("npm_token", r"(?P<s>\bnpm_[A-Za-z0-9]{30,})"),
        ("stripe_key", r"(?P<s>\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,})"),
        ("sk_key", r"(?P<s>\bsk-[A-Za-z0-9_-]{16,})"),
        ("jwt", r"(?P<s>\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*)"),
        ("bearer", r"(?i)\bbearer\s+(?P<s>[A-Za-z0-9._~+/=-]{8,})"),
        ("basic_auth", r"(?i)\bbasic\s+(?P<s>[A-Za-z0-9+/=]{8,})"),
        ("url_credentials", r"://[^/\s:@]+:(?P<s>[^/\s@]+)@"),
        (
            "assignment",
            r"(?i)(?:pass(?:word|wd)?|pwd|secret|api[_-]?key|access[_-]?key|"
            r"client[_-]?secret|(?:access|auth|refresh)?[_-]?token)"
            r"[\"']?\s*[:=]\s*[\"']?(?P<s>[^\s\"'&,;}]+)",
        ),
    )
)

# Lower-case substrings one of which a string must contain for the pattern to possibly match.
_NEEDS: dict[str, tuple[str, ...]] = {
    "private_key": ("private key",),
    "slack_token": ("xox",),
    "slack_webhook": ("hooks.slack.com",),
    "google_api_key": ("aiza",),
    "npm_token": ("npm_",),
    "stripe_key": ("_live_", "_test_"),
    "sk_key": ("sk-",),
    "jwt": ("eyj",),
    "bearer": ("bearer",),
    "basic_auth": ("basic",),
    "url_credentials": ("://",),
    "assignment": ("=", ":"),
}
_CACHE_SIZE = 4096
_CACHE_MAX_LEN = 128
_PATTERNS = tuple((kind, rx, _NEEDS.get(kind, ())) for kind, rx in PATTERNS)

_SENSITIVE_KEY = re.compile(
    r"(password|passwd|passphrase|secret|token|authorization|api_?key|apikey|private_?key|"
    r"credential|cookie|access_?key)"
)


def _sensitive_key(key: str) -> str | None:
    m = _SENSITIVE_KEY.search(key.lower().replace("-", "_"))
    return m.group(1).replace("_", "") if m else None


class Redactor:
    """Redacts ``secrets`` (exact values) and credential patterns from JSON-like data."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: frozenset[str] = frozenset()
        self._secret_rx: re.Pattern[str] | None = None
        self._cache: dict[str, str] = {}  # short strings (keys, enum-like values) recur a lot
        self.add_secrets(secrets)

    @property
    def secrets(self) -> frozenset[str]:
        return self._secrets

    def add_secrets(self, values: Iterable[str]) -> None:
        """Mark more exact values secret (empty strings are ignored)."""
        new = {v for v in values if isinstance(v, str) and v}
        if not new - self._secrets:
            return
        self._secrets = self._secrets | new
        self._cache.clear()
        alts = sorted(self._secrets, key=lambda s: (-len(s), s))
        self._secret_rx = re.compile("|".join(re.escape(s) for s in alts))

    def text(self, value: str) -> str:
        """Redact one string."""
        short = len(value) <= _CACHE_MAX_LEN
        if short and value in self._cache:
            return self._cache[value]
        out = value
        if self._secret_rx is not None:
            out = self._secret_rx.sub(marker("secret"), out)
        low = out.lower()
        for kind, rx, needs in _PATTERNS:
            if needs and not any(n in low for n in needs):
                continue  # cheap pre-check: the pattern cannot match without one of these
            new = rx.sub(functools.partial(_replace, kind=kind), out)
            if new != out:
                out, low = new, new.lower()
        if short:
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()
            self._cache[value] = out
        return out

    def data(self, value: Any) -> Any:
        """Redact a JSON-like value; refuse anything that is not plain JSON."""
        return self._walk(value, "data", 0)

    def _walk(self, value: Any, where: str, depth: int) -> Any:
        if depth > 64:
            raise AuditError(f"audit data nests deeper than 64 levels at {where}", "flatten it")
        if value is None or isinstance(value, bool | int):
            return value
        if isinstance(value, float):
            if not math.isfinite(value):
                raise AuditError(f"audit data has a non-finite number at {where}", "")
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list | tuple):
            return [self._walk(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for k, v in value.items():
                if not isinstance(k, str):
                    raise AuditError(
                        f"audit data has a {type(k).__name__} key at {where}, expected str", ""
                    )
                key = self.text(k)
                while key in out:  # two keys redacted to the same text: keep both
                    key += "~"
                kind = _sensitive_key(k)
                out[key] = marker(kind) if kind else self._walk(v, f"{where}.{key}", depth + 1)
            return out
        raise AuditError(
            f"audit data at {where} is a {type(value).__name__}, expected plain JSON",
            "convert it to str/int/float/bool/None/list/dict first",
        )


def _replace(m: re.Match[str], kind: str) -> str:
    start, end = m.span("s")
    whole, off = m.group(0), m.start()
    return whole[: start - off] + marker(kind) + whole[end - off :]
