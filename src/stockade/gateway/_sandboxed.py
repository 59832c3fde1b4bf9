"""The sandbox launcher: each downstream server runs in gVisor via :mod:`stockade.sandbox`.

The run is recorded in the run store (so ``get_run_trace`` / ``stockade trace`` show it) and its
stdio pipes become the downstream session's byte stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import threading
from pathlib import Path
from typing import IO, Any

from stockade.errors import SandboxError
from stockade.models import AuditSink, Clock, SandboxSpec

from ._config import ServerSpec
from ._errors import DownstreamError

__all__ = ["SandboxLauncher", "sandbox_spec_for"]


def sandbox_spec_for(server: ServerSpec) -> SandboxSpec:
    """The hardened spec a server runs under: gVisor, its binds, limits and network profile only
    (an allowlist is served by the run's own egress proxy, as for ``stockade run``). An image
    server runs its verified rootfs, with the image's Env/User only through the spec builder's
    filters; one whose image was not verified in this process is refused."""
    from stockade.sandbox import Overrides, PolicyLimits, build_spec

    box = server.sandbox
    limits = PolicyLimits(
        kind="server",
        cpu_seconds=box.cpu_seconds,
        memory_mb=box.memory_mb,
        pids=box.pids,
        timeout_s=box.timeout_s,
        network=box.network,
        binds=box.binds,
        secrets=box.secrets,
        env=tuple(sorted(server.env.items())),
        from_policy=True,
    )
    image = server.image
    if image is None:
        return build_spec(server.command, limits, Overrides())
    if not image.rootfs or not image.digest:
        raise SandboxError(
            f"image {image.requested!r} of server {server.name!r} was not verified by this "
            "gateway: got no verified rootfs, expected the supply-chain gate to pass first",
            "serve the policy with stockade gateway (it verifies every image before serving)",
        )
    return build_spec(
        server.command,
        limits,
        Overrides(cwd=image.workdir),
        image_digest=image.digest,
        rootfs=image.rootfs,
        image_env=image.env,
        image_user=image.user,
    )


class _Sandboxed:
    def __init__(self, run: Any, reader: asyncio.StreamReader, stdin: IO[bytes]) -> None:
        self._run = run
        self._reader = reader
        self._stdin = stdin
        self._lock = threading.Lock()
        self._code: int | None = None

    @property
    def reader(self) -> asyncio.StreamReader:
        return self._reader

    @property
    def returncode(self) -> int | None:
        return self._code

    def _write(self, data: bytes) -> None:
        with self._lock:
            self._stdin.write(data)
            self._stdin.flush()

    async def write(self, data: bytes) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(None, self._write, data)
        except (BrokenPipeError, ConnectionResetError, ValueError) as e:
            raise DownstreamError("sandboxed server closed its input", "see its run trace") from e

    async def close(self) -> None:
        self._run.kill()
        with contextlib.suppress(SandboxError):
            outcome, _ = self._run.wait(30)
            self._code = outcome.exit_code if outcome.exit_code is not None else -1
        with contextlib.suppress(OSError):
            self._stdin.close()


class SandboxLauncher:
    """Launch servers with :func:`stockade.sandbox.start_recorded` (refuses, never weakens)."""

    def __init__(
        self,
        *,
        state: Path,
        clock: Clock,
        store: Any = None,
        audit: AuditSink | None = None,
        policy_hash: str = "",
        secrets: Any = None,
    ) -> None:
        self._state = state
        self._clock = clock
        self._store = store
        self._audit = audit
        self._policy_hash = policy_hash
        self._secrets = secrets
        self.run_ids: dict[str, str] = {}

    async def launch(self, server: ServerSpec) -> _Sandboxed:
        from stockade.sandbox import start_recorded

        self._state.mkdir(parents=True, exist_ok=True, mode=0o700)
        image = server.image
        try:
            run = start_recorded(
                sandbox_spec_for(server),
                state=self._state,
                clock=self._clock,
                store=self._store,
                audit=self._audit,
                secrets=self._secrets,
                workload=" ".join(server.command) if image is None else image.reference,
                kind="server",
                server=server.name,
                policy_hash=self._policy_hash,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                evidence=() if image is None else image.evidence,
            )
        except SandboxError as e:
            raise DownstreamError(
                f"server {server.name!r} could not be sandboxed: {e.what}", e.fix
            ) from e
        sb = run.sandbox
        if sb.stdin is None or sb.stdout is None:
            run.kill()
            raise DownstreamError(f"server {server.name!r} has no stdio pipes", "report a bug")
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=2**16)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sb.stdout)
        self.run_ids[server.name] = run.run_id
        return _Sandboxed(run, reader, sb.stdin)
