"""Taint state keyed on (authenticated client, registered conversation).

A context is *clean* only when the host application registered it (with its own credential) and
no tool result has entered it since. Unregistered contexts are tainted. Reconnecting does not wash
taint away: the key is the client identity plus the conversation id, not a transport session.
"""

from __future__ import annotations

import hmac

from stockade.models import Frozen

from ._errors import ConfigError

__all__ = ["ContextKey", "TaintTracker", "TrustedContext"]


class ContextKey(Frozen):
    client: str
    conversation: str


class TrustedContext(Frozen):
    """What the host application registered: the user's own instruction for this conversation."""

    instruction: str
    tainted: bool = False
    tainted_by: str = ""


class TaintTracker:
    """In-memory taint state; registration needs the host application's credential."""

    def __init__(self, host_credential: str | None) -> None:
        if host_credential is not None and len(host_credential) < 16:
            raise ConfigError(
                "host credential is shorter than 16 characters", "use a long random token"
            )
        self._cred = host_credential
        self._contexts: dict[ContextKey, TrustedContext] = {}

    def register(self, key: ContextKey, instruction: str, credential: str) -> bool:
        """Register a clean context. Refused (False) without a configured, matching credential."""
        if self._cred is None or not hmac.compare_digest(self._cred.encode(), credential.encode()):
            return False
        if not key.conversation:
            return False
        self._contexts[key] = TrustedContext(instruction=instruction)
        return True

    def mark_tainted(self, key: ContextKey, source: str) -> None:
        ctx = self._contexts.get(key)
        if ctx is not None and not ctx.tainted:
            self._contexts[key] = TrustedContext(
                instruction=ctx.instruction, tainted=True, tainted_by=source
            )

    def is_tainted(self, key: ContextKey) -> bool:
        ctx = self._contexts.get(key)
        return ctx is None or ctx.tainted

    def trusted_instruction(self, key: ContextKey) -> str | None:
        ctx = self._contexts.get(key)
        return None if ctx is None else ctx.instruction

    def describe(self, key: ContextKey) -> str:
        ctx = self._contexts.get(key)
        if ctx is None:
            return "unregistered context (tainted)"
        return f"tainted by {ctx.tainted_by}" if ctx.tainted else "clean"
