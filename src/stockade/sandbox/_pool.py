"""Warm pool: pre-started, single-use gVisor sandboxes for one exact spec.

Each pooled sandbox is a normal launch whose command waits, inside the sandbox, for one line on
its stdin before it ``exec``s the real command: the gVisor boot (the ~150-300 ms cold start) is
paid ahead of time. Handing one out writes that line and starts the watch (deadline and CPU
budget count from the hand-out; the boot's CPU is subtracted). A pooled sandbox serves exactly
one workload and is never reused; a request whose spec differs from the pool's is refused.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any

from stockade.errors import SandboxError
from stockade.models import AuditSink, Runtime, SandboxSpec

from ._proxy import system_resolver
from ._runner import Sandbox, _start, _Started

__all__ = ["WarmPool"]

#: The stub: read exactly one line (sh reads pipes byte by byte), then become the command.
_STUB = 'read -r _ && exec "$@"'


def _wrap(spec: SandboxSpec) -> SandboxSpec:
    return spec.model_copy(update={"argv": ("/bin/sh", "-c", _STUB, "stockade-pool", *spec.argv)})


class WarmPool:
    """``size`` ready sandboxes for ``spec`` (gvisor, network none, no secrets)."""

    def __init__(
        self,
        spec: SandboxSpec,
        *,
        state: Path,
        size: int = 1,
        audit: AuditSink | None = None,
        protected: tuple[str, ...] = (),
    ) -> None:
        if spec.runtime != Runtime.GVISOR:
            raise SandboxError("the warm pool holds gvisor sandboxes only", "use runtime gvisor")
        if spec.network.mode != "none" or spec.secrets:
            raise SandboxError(
                "a pooled sandbox cannot carry an egress proxy or secrets (they are per run)",
                "launch such runs directly",
            )
        if not 0 < size <= 64:
            raise SandboxError(f"pool size {size} is out of range (1-64)", "pick 1 to 64")
        self.spec = spec
        self._state = state
        self._size = size
        self._audit = audit
        self._protected = protected
        self._ready: list[_Started] = []
        self._closed = False

    def _new(self) -> _Started:
        return _start(
            self.spec, state=self._state, run_id=uuid.uuid4().hex, secrets=None, audit=None,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            protected=self._protected, egress_resolver=system_resolver, egress_ranges=(),
            pins=(), argv_wrapper=_wrap,
        )  # fmt: skip

    def fill(self) -> int:
        """Start sandboxes until ``size`` are ready; the number ready. A closed pool starts none:
        a background refill that runs after :meth:`close` must not boot a sandbox nobody owns."""
        if self._closed:
            return 0
        alive = []
        for s in self._ready:
            if s.proc.poll() is None:
                alive.append(s)
            else:
                s.discard()
        self._ready = alive
        while len(self._ready) < self._size:
            self._ready.append(self._new())
        return len(self._ready)

    def take(self, spec: SandboxSpec) -> Sandbox:
        """A started sandbox running ``spec``; pooled when one is ready, else a cold start."""
        if spec != self.spec:
            raise SandboxError(
                "the requested spec differs from the pool's (a pooled sandbox runs only the "
                "exact spec it was started for)",
                "launch it directly, or configure a pool for this spec",
            )
        while self._ready:
            started = self._ready.pop(0)
            if started.proc.poll() is not None or started.proc.stdin is None:
                started.discard()
                continue
            offset = started.cgroup.usage().cpu_ns
            try:
                started.proc.stdin.write(b"\n")
                started.proc.stdin.flush()
            except OSError:
                started.discard()
                continue
            if self._audit is not None:
                self._audit.append(
                    "sandbox.launched",
                    {"backend": "gvisor", "pooled": True, "spec": spec.model_dump(mode="json")},
                    run_id=started.run_id,
                )
            return started.handle(self._audit, cpu_offset_ns=offset)
        cold = self._new()
        stdin = cold.proc.stdin
        if stdin is None:
            cold.discard()
            raise SandboxError("a cold pool start has no stdin", "report a bug")
        stdin.write(b"\n")
        stdin.flush()
        return cold.handle(self._audit, cpu_offset_ns=cold.cgroup.usage().cpu_ns)

    def close(self) -> None:
        self._closed = True
        for s in self._ready:
            s.discard()
        self._ready = []

    def __enter__(self) -> WarmPool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
