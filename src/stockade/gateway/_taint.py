"""Taint state keyed on (authenticated client, registered conversation).

A context is *clean* only when the host application registered it (with its own credential) and
no tool result has entered it since. Unregistered contexts are tainted. Reconnecting does not wash
taint away: the key is the client identity plus the conversation id, not a transport session.

Every context, registered or not, also records which servers' output entered it (its taint
provenance), for the cross-namespace question ``data_access`` (docs/policy.md, "OPA"). Unregistered
contexts are chosen by the agent, so at most :data:`MAX_UNREGISTERED` of them are remembered; once
one was forgotten, an unregistered context with no record says its provenance is incomplete.
"""

from __future__ import annotations

import hmac
from collections import OrderedDict

from stockade.models import Frozen

from ._errors import ConfigError

__all__ = ["MAX_UNREGISTERED", "ContextKey", "TaintTracker", "TrustedContext"]

MAX_UNREGISTERED = 65536  # unregistered contexts whose provenance is remembered


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
        self._sources: OrderedDict[ContextKey, tuple[str, ...]] = OrderedDict()
        self._forgot = False

    def accepts(self, credential: str) -> bool:
        """Whether ``credential`` is the configured host credential (constant-time compare)."""
        return self._cred is not None and hmac.compare_digest(
            self._cred.encode(), credential.encode()
        )

    def register(self, key: ContextKey, instruction: str, credential: str) -> bool:
        """Register a clean context. Refused (False) without a configured, matching credential."""
        if not self.accepts(credential) or not key.conversation:
            return False
        self._contexts[key] = TrustedContext(instruction=instruction)
        self._sources.pop(key, None)
        return True

    def mark_tainted(self, key: ContextKey, source: str, server: str = "") -> None:
        """Output of ``source`` (from ``server``; ``source`` itself when not given) entered."""
        origin = server or source
        known = self._sources.pop(key, ())
        self._sources[key] = known if origin in known else (*known, origin)
        while len(self._sources) - len(self._contexts) > MAX_UNREGISTERED:
            oldest = next(k for k in self._sources if k not in self._contexts)
            del self._sources[oldest]
            self._forgot = True
        ctx = self._contexts.get(key)
        if ctx is not None and not ctx.tainted:
            self._contexts[key] = TrustedContext(
                instruction=ctx.instruction, tainted=True, tainted_by=source
            )

    def is_tainted(self, key: ContextKey) -> bool:
        ctx = self._contexts.get(key)
        return ctx is None or ctx.tainted

    def sources(self, key: ContextKey) -> tuple[tuple[str, ...], bool]:
        """The servers whose output entered this context, and whether that list is complete."""
        known = self._sources.get(key)
        if known is not None:
            return known, True
        return (), key in self._contexts or not self._forgot

    def trusted_instruction(self, key: ContextKey) -> str | None:
        ctx = self._contexts.get(key)
        return None if ctx is None else ctx.instruction

    def describe(self, key: ContextKey) -> str:
        ctx = self._contexts.get(key)
        if ctx is None:
            return "unregistered context (tainted)"
        return f"tainted by {ctx.tainted_by}" if ctx.tainted else "clean"
