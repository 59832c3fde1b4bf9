"""Operator login for the approval page: per-operator tokens from the secret store, sessions
with a CSRF token each (held in memory by the serving process, injected clock)."""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from stockade.errors import SecretStoreError
from stockade.models import Clock
from stockade.secrets import SecretStore

from ._errors import LoginRefused

__all__ = ["MAX_FAILURES", "OPERATOR_SECRET_PREFIX", "Session", "Sessions", "operator_secret_name"]

#: An operator ``alice`` logs in with the value of secret ``approvals.operator.alice``.
# pragma: allowlist nextline secret
OPERATOR_SECRET_PREFIX = "approvals.operator."  # noqa: S105 - a name prefix  # nosec B105
_OPERATOR = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_MAX_SESSIONS = 1000
#: Failed logins before an operator name is locked for the life of the serving process.
MAX_FAILURES = 10


def operator_secret_name(operator: str) -> str:
    if not _OPERATOR.fullmatch(operator):
        raise LoginRefused(
            f"operator name {operator[:40]!r} is not valid",
            "use 1-32 lowercase letters, digits, '_' or '-', starting with a letter",
        )
    return OPERATOR_SECRET_PREFIX + operator


@dataclass(frozen=True)
class Session:
    operator: str
    csrf: str
    expires_at: datetime


class Sessions:
    """Logins and their sessions. Every failure raises :class:`LoginRefused` (never says which
    part of a login was wrong)."""

    def __init__(self, secrets_store: SecretStore, clock: Clock, ttl_s: float = 8 * 3600) -> None:
        self._secrets = secrets_store
        self._clock = clock
        self._ttl = timedelta(seconds=ttl_s)
        self._sessions: dict[str, Session] = {}
        self._failures: dict[str, int] = {}

    def login(self, operator: str, token: str) -> tuple[str, Session]:
        refused = LoginRefused(
            "login refused: unknown operator or wrong token",
            "use the token stored as secret approvals.operator.<name>",
        )
        key = operator[:64]
        if self._failures.get(key, 0) >= MAX_FAILURES:
            raise LoginRefused(
                "login refused: too many failed attempts for this operator",
                "restart the approval page after checking who tried",
            )
        try:
            name = operator_secret_name(operator)
            expected = self._secrets.get(name)
        except (LoginRefused, SecretStoreError):
            self._fail(key)
            raise refused from None
        if not expected or not hmac.compare_digest(expected, token.encode("utf-8")):
            self._fail(key)
            raise refused
        self._prune()
        if len(self._sessions) >= _MAX_SESSIONS:
            raise LoginRefused("too many open sessions", "log out elsewhere or restart the page")
        sid = secrets.token_urlsafe(32)
        session = Session(operator, secrets.token_urlsafe(32), self._clock.now() + self._ttl)
        self._sessions[sid] = session
        return sid, session

    def _fail(self, key: str) -> None:
        if len(self._failures) < 10_000 or key in self._failures:
            self._failures[key] = self._failures.get(key, 0) + 1

    def get(self, sid: str | None) -> Session:
        session = self._sessions.get(sid or "")
        if session is None or self._clock.now() >= session.expires_at:
            self._sessions.pop(sid or "", None)
            raise LoginRefused("not logged in (or the session expired)", "log in again")
        return session

    def check_csrf(self, session: Session, token: str | None) -> None:
        if not token or not hmac.compare_digest(session.csrf.encode(), token.encode()):
            raise LoginRefused("missing or wrong CSRF token", "reload the page and try again")

    def logout(self, sid: str | None) -> None:
        self._sessions.pop(sid or "", None)

    def _prune(self) -> None:
        now = self._clock.now()
        for sid in [k for k, v in self._sessions.items() if now >= v.expires_at]:
            del self._sessions[sid]
