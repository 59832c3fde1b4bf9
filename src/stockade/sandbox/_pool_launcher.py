"""A gateway ``Launcher`` that hands out warm, single-use gVisor sandboxes when a pool is asked.

The policy's ``warm_pool: N`` for a server profile becomes ``sizes[name] = N``. A server whose
spec can be pooled (gVisor, network ``none``, no secrets) gets a pool of N sandboxes booted for
exactly its spec; each launch takes one (never reused), records it in the run store like any
run, and refills the pool in the background. Any other server, or a size of 0, is a cold start
through the gateway's ``SandboxLauncher``. This module imports the gateway and is therefore not
re-exported by ``stockade.sandbox`` (the gateway imports the sandbox package).
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stockade.errors import SandboxError
from stockade.gateway._config import ServerSpec
from stockade.gateway._errors import DownstreamError
from stockade.gateway._sandboxed import SandboxLauncher, _Sandboxed, sandbox_spec_for
from stockade.models import AuditSink, Clock, RunRecord, RunStatus

from ._pool import WarmPool
from ._service import RecordedRun

__all__ = ["PoolLauncher"]


class PoolLauncher:
    """``SandboxLauncher`` plus per-server warm pools (``sizes``: server name → pool size)."""

    def __init__(
        self,
        *,
        state: Path,
        clock: Clock,
        sizes: Mapping[str, int],
        store: Any = None,
        audit: AuditSink | None = None,
        policy_hash: str = "",
        secrets: Any = None,
    ) -> None:
        self._cold = SandboxLauncher(
            state=state, clock=clock, store=store, audit=audit, policy_hash=policy_hash,
            secrets=secrets,
        )  # fmt: skip
        self._state = state
        self._clock = clock
        self._store = store
        self._audit = audit
        self._policy_hash = policy_hash
        self._sizes = {k: v for k, v in sizes.items() if v > 0}
        self._pools: dict[str, WarmPool] = {}
        # take() and fill() of one pool never overlap: a taken sandbox must not be re-listed.
        self._locks: dict[str, threading.Lock] = {}
        self._closed = False
        self.run_ids = self._cold.run_ids

    def _pool_for(self, server: ServerSpec) -> WarmPool | None:
        size = self._sizes.get(server.name, 0)
        if self._closed or not size or server.sandbox.secrets:
            # Secrets are per run: a pooled sandbox never holds one, so every secret is delivered
            # by a launch, after the launcher's gates (OPA's secret_access) have been asked.
            return None
        spec = sandbox_spec_for(server)
        pool = self._pools.get(server.name)
        if pool is not None and pool.spec != spec:
            pool.close()  # the server's profile changed: its booted sandboxes are stale
            pool = None
        if pool is None:
            try:
                pool = WarmPool(spec, state=self._state, size=size, audit=self._audit)
            except SandboxError:
                return None  # not poolable (egress or secrets are per run): cold start
            self._pools[server.name] = pool
            self._locks[server.name] = threading.Lock()
        return pool

    def fill(self) -> None:
        """Boot every pool to its size (call at gateway start; launches refill afterwards)."""
        for name, pool in self._pools.items():
            with self._locks[name]:
                pool.fill()

    def prepare(self, servers: list[ServerSpec]) -> None:
        """Create and fill the pools of ``servers`` that ask for one."""
        for server in servers:
            self._pool_for(server)
        self.fill()

    async def launch(self, server: ServerSpec) -> _Sandboxed:
        pool = self._pool_for(server)
        if pool is None:
            return await self._cold.launch(server)
        spec = pool.spec
        self._state.mkdir(parents=True, exist_ok=True, mode=0o700)
        loop = asyncio.get_running_loop()
        try:
            sb = await loop.run_in_executor(
                None, _locked, self._locks[server.name], pool.take, spec
            )
        except SandboxError as e:
            raise DownstreamError(
                f"server {server.name!r} could not be sandboxed: {e.what}", e.fix
            ) from e
        if self._store is not None:
            now = self._clock.now()
            self._store.create(
                RunRecord(
                    run_id=sb.run_id, workload=" ".join(server.command), kind="server",
                    server=server.name, backend=spec.runtime.value,
                    policy_hash=self._policy_hash, spec=spec.model_dump(mode="json"),
                    network_profile=spec.network.model_dump(mode="json"),
                    status=RunStatus.PENDING, created_at=now,
                )
            )  # fmt: skip
            self._store.update(sb.run_id, status=RunStatus.RUNNING, started_at=now)
            self._store.add_evidence(sb.run_id, "sandbox.pooled", {"pool_size": pool_size(pool)})
        run = RecordedRun(sb, self._store, self._clock)
        if sb.stdin is None or sb.stdout is None:
            run.kill()
            raise DownstreamError(f"server {server.name!r} has no stdio pipes", "report a bug")
        if sb.stderr is not None:
            sb.stderr.close()
        reader = asyncio.StreamReader(limit=2**16)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sb.stdout)
        self.run_ids[server.name] = sb.run_id
        loop.run_in_executor(None, _refill, self._locks[server.name], pool)
        return _Sandboxed(run, reader, sb.stdin)

    def close(self) -> None:
        self._closed = True  # no pool is made again; a refill still queued finds its pool closed
        for name, pool in self._pools.items():
            with self._locks[name]:
                pool.close()
        self._pools.clear()


def pool_size(pool: WarmPool) -> int:
    return pool._size


def _locked(lock: threading.Lock, fn: Any, *args: Any) -> Any:
    with lock:
        return fn(*args)


def _refill(lock: threading.Lock, pool: WarmPool) -> None:
    try:
        with lock:
            pool.fill()
    except SandboxError:
        return  # the next launch cold-starts; the refusal is the pool's, not the run's
    except subprocess.SubprocessError:
        return
