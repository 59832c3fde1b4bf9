"""A gateway Launcher that runs each downstream server as a gVisor Pod and attaches its stdio.

launch = render (a callback: the gateway's ``ServerSpec`` names no image) -> preflight + apply
(refused before any write when the cluster lacks a control) -> wait until the Pod is Running
(bounded) -> attach. stop = the rollback record deletes exactly what the apply created. The run
is recorded in the run store like the local sandbox launcher's runs, with the stderr tail, the
end reason and the cleanup steps as ``k8s`` evidence. Any failure after the apply rolls back.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from stockade.errors import StockadeError
from stockade.models import AuditSink, Clock, EndReason, RunRecord, RunStatus

from ._apply import apply_run, rollback_run
from ._attach import STDERR_LIMIT_BYTES, AttachApi
from ._attached import STDERR_KILL_BYTES, AttachedPod
from ._cluster import ObjRef, ref_of
from ._errors import KubeError, PreflightError
from ._from_policy import RunParams, render_server
from ._kuberun import wait_running
from ._outcome import PodOutcome, pod_outcome
from ._records import RecordStore
from ._render import Manifest
from ._rollback import RollbackRecord

if TYPE_CHECKING:
    from stockade.gateway import Launcher, ServerSpec
    from stockade.policy import Policy

__all__ = ["KubeLauncher", "Render", "policy_renderer"]

#: (server, run id) -> the run's verified manifests (exactly one Pod).
Render = Callable[["ServerSpec", str], tuple[Manifest, ...]]
_Ops = list[Callable[[], None]]


def _flush(ops: _Ops) -> None:
    """Run the deferred run-store writes in the caller's (the event loop's) thread."""
    for op in ops:
        op()


def policy_renderer(
    policy: Policy,
    *,
    digests: Mapping[str, str] | None = None,
    egress_proxy_ip: str | None = None,
    egress_proxy_image: str | None = None,
    egress_namespace: str = "stockade-egress",
    secret_values: Callable[[str], Mapping[str, bytes]] | None = None,
) -> Render:
    """Render a gateway server from the policy server entry of the same name. ``digests`` are
    the digests the caller verified (supply-chain gate) per server; a pinned policy needs none.
    ``secret_values(server)`` reads the granted secrets at launch (None: empty values, for
    tests and plans only)."""

    def render(server: ServerSpec, run_id: str) -> tuple[Manifest, ...]:
        params = RunParams(
            run_id=run_id,
            digest=(digests or {}).get(server.name),
            egress_proxy_ip=egress_proxy_ip,
            egress_proxy_image=egress_proxy_image,
            egress_namespace=egress_namespace,
            egress_token=secrets.token_urlsafe(32),
            secret_values=None if secret_values is None else secret_values(server.name),
        )
        return render_server(policy, server.name, params)

    return render


def _fail(server: str, e: StockadeError) -> Exception:
    from stockade.gateway import DownstreamError

    return DownstreamError(f"server {server!r} could not run as a Pod: {e.what}", e.fix)


def _pod(objs: tuple[Manifest, ...]) -> tuple[ObjRef, str]:
    pods = [o for o in objs if o["kind"] == "Pod"]
    if len(pods) != 1:
        raise KubeError(f"the render has {len(pods)} Pods, expected 1", "render the run again")
    image = str(pods[0]["spec"]["containers"][0]["image"])
    return ref_of(pods[0]), image


class KubeLauncher:
    """Implements the gateway's ``Launcher`` Protocol against an :class:`AttachApi`."""

    def __init__(
        self,
        api: AttachApi,
        render: Render,
        *,
        records: RecordStore,
        clock: Clock,
        wait: Callable[[float], None],
        store: Any = None,
        audit: AuditSink | None = None,
        policy_hash: str = "",
        start_timeout_s: float = 120.0,
        unsafe_assume_networkpolicy: bool = False,
        new_run_id: Callable[[], str] = lambda: secrets.token_hex(8),
        stderr_cap: int = STDERR_LIMIT_BYTES,
        stderr_kill_bytes: int = STDERR_KILL_BYTES,
        evidence: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        if not start_timeout_s > 0:
            raise KubeError(f"start timeout {start_timeout_s!r} s, expected > 0", "set one")
        self._api = api
        self._render = render
        self._records = records
        self._clock = clock
        self._wait = wait
        self._store = store
        self._audit = audit
        self._policy_hash = policy_hash
        self._start_timeout = start_timeout_s
        self._unsafe_np = unsafe_assume_networkpolicy
        self._new_run_id = new_run_id
        self._stderr_cap = stderr_cap
        self._stderr_kill = stderr_kill_bytes
        self._evidence = {k: dict(v) for k, v in (evidence or {}).items()}
        self.run_ids: dict[str, str] = {}

    async def launch(self, server: ServerSpec) -> AttachedPod:
        loop = asyncio.get_running_loop()
        ops: _Ops = []
        work = asyncio.ensure_future(asyncio.to_thread(self._start, server, ops))
        try:
            rid, record, pod, stream = await asyncio.shield(work)
        except asyncio.CancelledError:  # the thread goes on: undo whatever it creates
            work.add_done_callback(lambda done: self._abandon(done, ops, loop))
            raise
        except StockadeError as e:
            _flush(ops)
            raise _fail(server.name, e) from e
        _flush(ops)
        self.run_ids[server.name] = rid

        def on_close(handle: AttachedPod) -> tuple[int | None, Callable[[], None]]:
            return self._stop(rid, record, pod, handle)

        return AttachedPod(
            stream,
            on_close,
            loop=loop,
            stderr_cap=self._stderr_cap,
            stderr_kill_bytes=self._stderr_kill,
        )

    def _abandon(
        self, done: asyncio.Future[Any], ops: _Ops, loop: asyncio.AbstractEventLoop
    ) -> None:
        """A launch cancelled while its thread ran: close and roll back what it started."""
        if done.cancelled() or done.exception() is not None:
            _flush(ops)
            return
        rid, record, _, stream = done.result()
        end: _Ops = []

        def undo() -> None:
            stream.close()
            steps = self._rollback_steps(rid, record)
            why = "the launch was cancelled; the Pod was deleted"
            out = PodOutcome(RunStatus.KILLED, EndReason.KILLED_BY_OPERATOR, None, why)
            self._end(end, rid, out, {"detail": why, "cleanup": steps})

        loop.run_in_executor(None, undo).add_done_callback(lambda _: _flush([*ops, *end]))

    def _rollback_steps(self, rid: str, record: RollbackRecord) -> list[str]:
        try:
            res = rollback_run(self._api, record, execute=True, audit=self._audit)
        except KubeError as e:  # recorded: the objects named in the record are left over
            return [f"cleanup failed: {e.what} (stockade k8s rollback --run-id {rid})"]
        return [st.describe().strip() for st in res.steps]

    def _record(self, ops: _Ops, rid: str, server: str, image: str, status: RunStatus) -> None:
        if self._store is None:
            return
        now = self._clock.now()
        store = self._store
        rec = RunRecord(
            run_id=rid,
            workload=image,
            kind="server",
            server=server,
            backend="kubernetes",
            policy_hash=self._policy_hash,
            image_digest=image.partition("@")[2] or None,
            status=status,
            end_reason=EndReason.REFUSED if status == RunStatus.REFUSED else None,
            created_at=now,
            started_at=now if status == RunStatus.RUNNING else None,
            ended_at=now if status == RunStatus.REFUSED else None,
        )
        ops.append(lambda: store.create(rec))
        if status == RunStatus.RUNNING:  # e.g. the image verification of this server
            for kind, data in self._evidence.get(server, {}).items():
                ops.append(functools.partial(store.add_evidence, rid, kind, data))

    def _end(self, ops: _Ops, rid: str, out: PodOutcome, evidence: dict[str, Any]) -> None:
        if self._store is None:
            return
        store, now = self._store, self._clock.now()

        def write() -> None:
            store.update(
                rid,
                status=out.status,
                end_reason=out.end_reason,
                exit_code=out.exit_code,
                ended_at=now,
            )
            store.add_evidence(rid, "k8s", evidence)

        ops.append(write)

    def _start(self, server: ServerSpec, ops: _Ops) -> tuple[str, RollbackRecord, ObjRef, Any]:
        rid = self._new_run_id()
        try:
            objs = self._render(server, rid)
            pod, image = _pod(objs)
        except StockadeError as e:
            self._record(ops, rid, server.name, server.name, RunStatus.REFUSED)
            store, what = self._store, e.what
            if store is not None:
                ops.append(lambda: store.add_evidence(rid, "k8s", {"error": what}))
            raise
        self._record(ops, rid, server.name, image, RunStatus.RUNNING)
        try:
            applied = apply_run(
                self._api,
                objs,
                execute=True,
                store=self._records,
                clock=self._clock,
                server=server.name,
                run_id=rid,
                unsafe_assume_networkpolicy=self._unsafe_np,
                audit=self._audit,
            )
        except PreflightError as e:
            out = PodOutcome(RunStatus.REFUSED, EndReason.REFUSED, None, e.what)
            self._end(ops, rid, out, {"error": e.what})
            raise
        except StockadeError as e:
            self._end(ops, rid, PodOutcome(RunStatus.FAILED, EndReason.ERROR, None, e.what), {})
            raise
        record = applied.record
        if record is None:
            raise KubeError("the apply returned no rollback record", "report this as a bug")
        try:
            self._until_running(pod)
            stream = self._api.attach(pod.namespace, pod.name)
        except (StockadeError, KeyboardInterrupt) as e:
            what = e.what if isinstance(e, StockadeError) else "interrupted"
            steps = self._rollback_steps(rid, record)
            out = PodOutcome(RunStatus.FAILED, EndReason.ERROR, None, what)
            self._end(ops, rid, out, {"error": what, "cleanup": steps})
            raise
        return rid, record, pod, stream

    def _until_running(self, pod: ObjRef) -> None:
        deadline = self._clock.now() + timedelta(seconds=self._start_timeout)
        out = wait_running(self._api, pod, deadline=deadline, clock=self._clock, wait=self._wait)
        if out.status == RunStatus.RUNNING:
            return
        if out.ended:
            raise KubeError(
                f"the Pod ended before it could be attached: {out.detail}",
                "see the run's evidence and the server's image",
            )
        raise KubeError(
            f"the Pod is not Running after {self._start_timeout:g}s: {out.detail}",
            "check the cluster's capacity and the image pull, or raise the start timeout",
        )

    def _stop(
        self, rid: str, record: RollbackRecord, pod: ObjRef, handle: AttachedPod
    ) -> tuple[int | None, Callable[[], None]]:
        ops: _Ops = []
        try:
            out = pod_outcome(self._api.get(pod))
        except KubeError as e:
            out = PodOutcome(RunStatus.LOST, EndReason.LOST, None, f"unreadable: {e.what}")
        if not out.ended:
            out = PodOutcome(
                RunStatus.KILLED,
                EndReason.KILLED_BY_OPERATOR,
                None,
                f"stopped by the gateway ({handle.ended_by or 'closed'}); the Pod was deleted",
            )
        steps = self._rollback_steps(rid, record)
        self._end(
            ops,
            rid,
            out,
            {
                "detail": out.detail,
                "ended_by": handle.ended_by,
                "stderr_tail": handle.stderr.text(),
                "stderr_dropped": handle.stderr.dropped,
                "cleanup": steps,
            },
        )
        return out.exit_code, lambda: _flush(ops)


if TYPE_CHECKING:  # mypy checks that this is a gateway Launcher

    def _is_a_launcher(x: KubeLauncher) -> Launcher:
        return x
