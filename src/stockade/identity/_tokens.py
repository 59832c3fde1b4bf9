"""Per-run tokens: orchestrator-issued, bound to one run id, short-lived, revocable, scoped.

Format (compact, no algorithm field, so there is nothing to confuse)::

    stk1.<base64url(canonical JSON claims)>.<base64url(HMAC-SHA256(key, "stk1." + claims))>

Claims: ``v`` (1), ``run`` (run id), ``scp`` (sorted scopes such as ``progress`` or
``secret:NAME``), ``iat`` and ``exp`` (Unix seconds), ``jti`` (random id). Every check runs the
numbered steps in :meth:`TokenAuthority.check` and fails with "got X, expected Y".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from datetime import timedelta
from typing import Any, Protocol

from stockade.errors import IdentityError
from stockade.models import Clock, Frozen

__all__ = [
    "DEFAULT_TOKEN_TTL",
    "MAX_TOKEN_TTL",
    "TOKEN_PREFIX",
    "MemoryRevocations",
    "RevocationList",
    "RunTokenClaims",
    "TokenAuthority",
    "TokenError",
]

TOKEN_PREFIX = "stk1"  # noqa: S105  # nosec B105 - a format tag, not a secret
DEFAULT_TOKEN_TTL = timedelta(minutes=15)
MAX_TOKEN_TTL = timedelta(hours=24)
MAX_TOKEN_BYTES = 4096
_SCOPE = re.compile(r"^(progress|secret:[A-Za-z0-9_.-]{1,128})$")
_FIELDS = {"v", "run", "scp", "iat", "exp", "jti"}


class TokenError(IdentityError):
    """A run token was refused; ``what`` names the failed step."""


class RevocationList(Protocol):
    def is_revoked(self, jti: str, run_id: str) -> bool: ...


class MemoryRevocations:
    """An in-memory revocation list (tests, single-process use)."""

    def __init__(self) -> None:
        self._jtis: set[str] = set()
        self._runs: set[str] = set()

    def revoke(self, jti: str) -> None:
        self._jtis.add(jti)

    def revoke_run(self, run_id: str) -> None:
        self._runs.add(run_id)

    def is_revoked(self, jti: str, run_id: str) -> bool:
        return jti in self._jtis or run_id in self._runs


class RunTokenClaims(Frozen):
    run: str
    scopes: tuple[str, ...]
    iat: int
    exp: int
    jti: str


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def _b64d(text: str) -> bytes:
    if not _B64URL.fullmatch(text):
        raise TokenError("the token has characters outside base64url", "")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as e:
        raise TokenError("the token is not valid base64url", "") from e


def _canonical(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


class TokenAuthority:
    """Issues and checks run tokens with one HMAC key (at least 32 bytes) and an injected clock."""

    def __init__(self, key: bytes, clock: Clock, revocations: RevocationList) -> None:
        if len(key) < 32:
            raise IdentityError(
                f"got a {len(key)}-byte token key, expected at least 32 bytes",
                "generate one with secrets.token_bytes(32)",
            )
        self._key = key
        self._clock = clock
        self._revocations = revocations

    def _mac(self, signing_input: bytes) -> bytes:
        return hmac.new(self._key, signing_input, hashlib.sha256).digest()

    def issue(
        self, run_id: str, scopes: tuple[str, ...], ttl: timedelta = DEFAULT_TOKEN_TTL
    ) -> str:
        if not run_id:
            raise TokenError("got an empty run id, expected one", "")
        if not scopes:
            raise TokenError("got no scopes, expected at least one", "grant what the run needs")
        for s in scopes:
            if not _SCOPE.fullmatch(s):
                raise TokenError(f"got scope {s!r}, expected progress or secret:NAME", "")
        if not timedelta(0) < ttl <= MAX_TOKEN_TTL:
            raise TokenError(f"got ttl {ttl}, expected more than 0 and at most {MAX_TOKEN_TTL}", "")
        now = int(self._clock.now().timestamp())
        claims = {
            "v": 1,
            "run": run_id,
            "scp": sorted(set(scopes)),
            "iat": now,
            "exp": now + int(ttl.total_seconds()),
            "jti": secrets.token_urlsafe(16),
        }
        body = f"{TOKEN_PREFIX}.{_b64e(_canonical(claims))}"
        return f"{body}.{_b64e(self._mac(body.encode('ascii')))}"

    def parse(self, token: str) -> RunTokenClaims:
        """Steps 1-3: shape, MAC, claims. Expiry, revocation, run and scope are in :meth:`check`."""
        if len(token) > MAX_TOKEN_BYTES:
            raise TokenError(f"got a {len(token)}-byte token, expected at most 4096", "")
        parts = token.split(".")
        # 1. shape: exactly prefix.claims.mac
        if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
            raise TokenError(
                f"got a token of {len(parts)} parts starting {parts[0][:8]!r}, "
                f"expected {TOKEN_PREFIX}.<claims>.<mac>",
                "use the token the orchestrator issued for this run",
            )
        # 2. MAC (constant-time), before the claims are even parsed
        mac = _b64d(parts[2])
        if not _B64URL.fullmatch(parts[1]):
            raise TokenError("the token has characters outside base64url", "")
        expected = self._mac(f"{parts[0]}.{parts[1]}".encode("ascii"))
        if not hmac.compare_digest(mac, expected):
            raise TokenError("the token signature does not verify", "the token was altered")
        # 3. claims: exact fields and types
        try:
            raw = json.loads(_b64d(parts[1]))
        except ValueError as e:
            raise TokenError("the token claims are not JSON", "") from e
        if not isinstance(raw, dict) or set(raw) != _FIELDS or raw.get("v") != 1:
            raise TokenError("the token claims have the wrong fields or version", "")
        ok = (
            isinstance(raw["run"], str)
            and isinstance(raw["scp"], list)
            and all(isinstance(s, str) for s in raw["scp"])
            and isinstance(raw["iat"], int)
            and isinstance(raw["exp"], int)
            and isinstance(raw["jti"], str)
        )
        if not ok:
            raise TokenError("the token claims have the wrong types", "")
        return RunTokenClaims(
            run=raw["run"], scopes=tuple(raw["scp"]), iat=raw["iat"], exp=raw["exp"], jti=raw["jti"]
        )

    def check(self, token: str, *, run_id: str, scope: str) -> RunTokenClaims:
        """Verify ``token`` for one request on ``run_id`` needing ``scope``; raise otherwise."""
        claims = self.parse(token)
        now = int(self._clock.now().timestamp())
        # 4. time: not expired, not issued in the future
        if now >= claims.exp:
            raise TokenError(
                f"the token expired at {claims.exp}, it is now {now}", "ask for a new token"
            )
        if claims.iat > now + 60:
            raise TokenError(f"the token was issued in the future ({claims.iat} > {now})", "")
        # 5. revocation (of the token, or of every token of its run)
        if self._revocations.is_revoked(claims.jti, claims.run):
            raise TokenError("the token has been revoked", "the run's access was withdrawn")
        # 6. binding to the run
        if not hmac.compare_digest(claims.run.encode(), run_id.encode()):
            raise TokenError(
                f"the token is for run {claims.run!r}, not {run_id!r}",
                "a run's token only works for that run",
            )
        # 7. scope
        if scope not in claims.scopes:
            raise TokenError(
                f"the token grants {list(claims.scopes)}, expected scope {scope!r}",
                "issue the run a token with that scope",
            )
        return claims
