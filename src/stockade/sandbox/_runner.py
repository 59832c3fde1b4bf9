"""Launch a spec on a backend, enforce its budgets, account for its end, and clean up.

``launch`` refuses (raises :class:`SandboxError`) before anything starts when a control cannot be
applied. Once started, a monitor thread enforces the wall-clock deadline and the CPU budget (read
from the run's cgroup: gVisor ignores RLIMIT_CPU) and, at the end, records exit code, signal and
end reason, then deletes the container, the cgroup, the bundle and the secret files.
"""

from __future__ import annotations

import contextlib
import os
import subprocess  # nosec B404
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import IO, Any

from stockade.errors import SandboxError, StockadeError
from stockade.models import AuditSink, Bind, EndReason, RunStatus, Runtime, SandboxSpec

from ._backends import Prepared, host_pids_backstop, prepare_bwrap, prepare_gvisor
from ._cgroup import Cgroup, open_cgroup
from ._cgroup_detect import cgroup_root
from ._cgroup_sweep import sweep_stale
from ._egress import EgressPolicy, IPNetwork
from ._endreason import end_reason
from ._image import check_image_spec
from ._layout import check_spec_binds
from ._netns import NETNS_DIR, NetPair, create_pair
from ._netns import PROXY_ADDR as NETNS_PROXY_ADDR
from ._netns import PROXY_PORT as NETNS_PROXY_PORT
from ._pin import verify_pin
from ._probe import find_bwrap, find_gvisor, landlock_abi
from ._proxy import EgressProxy, system_resolver
from ._reap import LiveRun, destroy, process_start_time
from ._relay import PROXY_DIR, PROXY_PORT, relay_argv

__all__ = ["POLL_INTERVAL_S", "Outcome", "Sandbox", "launch"]

#: How often the monitor reads the CPU counter and the deadline (bounds the overshoot).
POLL_INTERVAL_S = 0.05
#: How often the monitor asks the injected stop check whether an operator asked to stop the run.
STOP_POLL_S = 0.5
RELAY_PYTHON = "/usr/bin/python3"
EGRESS_ROOT = Path("/run/stockade-egress")
_KILLED = frozenset(
    {EndReason.DEADLINE, EndReason.CPU_LIMIT, EndReason.MEMORY_LIMIT, EndReason.KILLED_BY_OPERATOR}
)


@dataclass(frozen=True)
class Outcome:
    run_id: str
    backend: str
    end_reason: EndReason
    exit_code: int | None
    signal: int | None
    cpu_seconds: float
    memory_peak_bytes: int
    oom_kills: int
    cleanup_error: str = ""
    stopped_by: str = ""

    @property
    def status(self) -> RunStatus:
        return RunStatus.KILLED if self.end_reason in _KILLED else RunStatus.EXITED

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["end_reason"] = self.end_reason.value
        d["status"] = self.status.value
        return d


class Sandbox:
    """A running sandbox: stdio pipes (when asked), ``wait()``, ``kill()``."""

    def __init__(
        self,
        *,
        spec: SandboxSpec,
        run_id: str,
        backend: str,
        proc: subprocess.Popen[bytes],
        prepared: Prepared,
        cgroup: Cgroup,
        live: LiveRun,
        state: Path,
        audit: AuditSink | None,
        runsc: str | None,
        proxy: EgressProxy | None = None,
        cpu_offset_ns: int = 0,
    ) -> None:
        self.spec = spec
        self.run_id = run_id
        self.backend = backend
        self.stdin: IO[bytes] | None = proc.stdin
        self.stdout: IO[bytes] | None = proc.stdout
        self.stderr: IO[bytes] | None = proc.stderr
        self._proc = proc
        self._prepared = prepared
        self._cgroup = cgroup
        self._live = live
        self._state = state
        self._audit = audit
        self._runsc = runsc
        self._proxy = proxy
        self._cpu_offset_ns = cpu_offset_ns
        self._reason: EndReason | None = None
        self._stop_check: Callable[[], str | None] | None = None
        self._stopped_by = ""
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._outcome: Outcome | None = None
        self._reported = False
        self._cleanup_error = ""
        self._deadline = time.monotonic() + spec.timeout_s
        self._thread = threading.Thread(target=self._monitor, name=f"sandbox-{run_id}", daemon=True)
        self._thread.start()

    @property
    def pid(self) -> int:
        return self._proc.pid

    def watch_stop(self, check: Callable[[], str | None]) -> None:
        """Ask ``check`` every :data:`STOP_POLL_S` (in the monitor loop that enforces the CPU
        budget) whether the run should stop; a non-empty answer names who asked, and the run is
        killed with end reason ``killed_by_operator`` and ``stopped_by`` recorded. A check that
        raises an ``OSError``/``StockadeError`` stops the run too (fail closed)."""
        self._stop_check = check

    def kill(self, reason: EndReason = EndReason.KILLED_BY_OPERATOR) -> None:
        """Stop the whole process tree now; the first reason given is the one recorded."""
        with self._lock:
            if self._reason is None:
                self._reason = reason
        self._kill_tree()

    def _kill_tree(self) -> None:
        if self.backend == "gvisor" and self._runsc:
            subprocess.run(  # nosec B603
                [self._runsc, f"--root={self._prepared.runsc_root}", "kill", "--all",
                 self._prepared.container_id, "KILL"],
                capture_output=True, timeout=30, check=False,
            )  # fmt: skip
        self._cgroup.kill_all()
        with contextlib.suppress(ProcessLookupError):
            self._proc.kill()

    def wait(self, timeout: float | None = None) -> Outcome:
        """The outcome once the run ended and was cleaned up; SandboxError on ``timeout``."""
        if not self._done.wait(timeout):
            raise SandboxError(
                f"run {self.run_id} still running after {timeout}s", "kill() it or wait longer"
            )
        if self._outcome is None:
            raise SandboxError(f"run {self.run_id} ended without an outcome", "report a bug")
        with self._lock:
            report, self._reported = not self._reported, True
        if report and self._audit is not None:
            # In the caller's thread: sinks and stores need not be thread-safe.
            self._audit.append("sandbox.ended", self._outcome.as_dict(), run_id=self.run_id)
        return self._outcome

    def _monitor(self) -> None:
        try:
            self._watch()
        except (OSError, subprocess.SubprocessError) as e:
            # Enforcement itself failed: fail closed, stop the workload, record why.
            self._cleanup_error = f"monitor failed: {e}"
            with self._lock:
                if self._reason is None:
                    self._reason = EndReason.ERROR
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                self._kill_tree()
        finally:
            self._finish()

    def _watch(self) -> None:
        cpu_ns = self.spec.cpu_seconds * 1e9 + self._cpu_offset_ns
        next_stop_poll = time.monotonic()
        while True:
            try:
                self._proc.wait(timeout=POLL_INTERVAL_S)
                break
            except subprocess.TimeoutExpired:
                pass
            if time.monotonic() >= self._deadline:
                self.kill(EndReason.DEADLINE)
            elif self._cgroup.usage().cpu_ns >= cpu_ns:
                self.kill(EndReason.CPU_LIMIT)
            elif self._stop_check is not None and time.monotonic() >= next_stop_poll:
                next_stop_poll = time.monotonic() + STOP_POLL_S
                self._poll_stop(self._stop_check)

    def _poll_stop(self, check: Callable[[], str | None]) -> None:
        try:
            by = check()
        except (OSError, StockadeError) as e:
            by = f"(stop check failed: {e})"
        if by:
            self._stopped_by = by
            self.kill(EndReason.KILLED_BY_OPERATOR)

    def _finish(self) -> None:
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                self._proc.kill()
            self._proc.wait(timeout=30)
        usage = self._cgroup.usage()
        rc = self._proc.returncode
        exit_code: int | None = rc if rc >= 0 else None
        sig: int | None = -rc if rc < 0 else (rc - 128 if rc > 128 else None)
        reason = end_reason(
            self._reason, oom_kills=usage.oom_kills, memory_failcnt=usage.memory_failcnt, signal=sig
        )
        self._outcome = Outcome(
            run_id=self.run_id,
            backend=self.backend,
            end_reason=reason,
            exit_code=exit_code,
            signal=sig,
            cpu_seconds=round(max(0, usage.cpu_ns - self._cpu_offset_ns) / 1e9, 3),
            memory_peak_bytes=usage.memory_bytes,
            oom_kills=usage.oom_kills,
            stopped_by=self._stopped_by,
        )
        if self._proxy is not None:
            self._proxy.close()
        try:
            destroy(self._live, self._runsc, kill=self._reason is not None)
            LiveRun.forget(self._state, self.run_id)
        except (SandboxError, OSError, subprocess.SubprocessError) as e:
            # The live-state file stays: the next start's reaper finishes the clean-up.
            self._cleanup_error = f"clean-up incomplete: {e}"
        if self._cleanup_error:
            self._outcome = replace(self._outcome, cleanup_error=self._cleanup_error)
        for s in (self.stdin,):
            if s is not None:
                with contextlib.suppress(OSError):
                    s.close()
        self._done.set()


def _with_egress(
    spec: SandboxSpec,
    run_id: str,
    audit: AuditSink | None,
    resolver: Callable[[str], list[str]],
    ranges: tuple[IPNetwork, ...],
) -> tuple[SandboxSpec, EgressProxy, str]:
    """Start the run's proxy on a Unix socket; bind it in; wrap argv with the relay."""
    EGRESS_ROOT.mkdir(mode=0o711, exist_ok=True)
    os.chmod(EGRESS_ROOT, 0o711)  # nosec B103  # noqa: S103 (traversal only: bwrap binds the run's dir)
    d = EGRESS_ROOT / run_id
    d.mkdir(mode=0o711)
    os.chmod(d, 0o711)  # nosec B103  # noqa: S103 (traversal only)
    sock = d / "proxy.sock"
    proxy = EgressProxy(
        EgressPolicy(spec.network.domains, ranges), sock, audit=audit, run_id=run_id,
        resolver=resolver,
    ).start()  # fmt: skip
    try:
        os.chown(sock, spec.uid, spec.gid)
        os.chmod(sock, 0o600)
    except OSError:
        proxy.close()
        raise
    wrapped = spec.model_copy(
        update={
            "argv": relay_argv(spec.argv, RELAY_PYTHON),
            "env": _proxy_env(spec, f"http://127.0.0.1:{PROXY_PORT}"),
            "binds": (*spec.binds, Bind(source=str(d), target=PROXY_DIR, mode="ro")),
        }
    )
    return wrapped, proxy, str(d)


def _proxy_env(spec: SandboxSpec, url: str) -> tuple[tuple[str, str], ...]:
    env = dict(spec.env)
    for k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env[k] = url
    return tuple(env.items())


def _with_image_egress(
    spec: SandboxSpec,
    pair: NetPair,
    *,
    run_id: str,
    audit: AuditSink | None,
    resolver: Callable[[str], list[str]],
    ranges: tuple[IPNetwork, ...],
) -> tuple[SandboxSpec, EgressProxy]:
    """An image run: the proxy listens inside its own namespace, reached over the run's veth."""
    listener = create_pair(pair)
    try:
        proxy = EgressProxy(
            EgressPolicy(spec.network.domains, ranges), NETNS_DIR / pair.proxy, audit=audit,
            run_id=run_id,
            resolver=resolver, listener=listener,
        ).start()  # fmt: skip
    except (OSError, RuntimeError):
        listener.close()
        raise
    url = f"http://{NETNS_PROXY_ADDR}:{NETNS_PROXY_PORT}"
    return spec.model_copy(update={"env": _proxy_env(spec, url)}), proxy


def _refuse(audit: AuditSink | None, run_id: str, err: SandboxError) -> SandboxError:
    if audit is not None:
        audit.append("sandbox.refused", {"what": err.what}, run_id=run_id)
    return err


def launch(
    spec: SandboxSpec,
    *,
    state: Path,
    run_id: str | None = None,
    secrets: Any = None,
    audit: AuditSink | None = None,
    stdin: int | IO[Any] | None = subprocess.DEVNULL,
    stdout: int | IO[Any] | None = subprocess.PIPE,
    stderr: int | IO[Any] | None = subprocess.PIPE,
    protected: tuple[str, ...] = (),
    egress_resolver: Callable[[str], list[str]] = system_resolver,
    egress_ranges: tuple[IPNetwork, ...] = (),
    pins: tuple[tuple[str, str], ...] = (),
) -> Sandbox:
    """Start ``spec``; refuse with :class:`SandboxError` if any control cannot be applied.

    ``stdin``/``stdout``/``stderr`` take subprocess values: ``PIPE`` gives the stdio attach mode
    (``Sandbox.stdin``/``stdout`` speak to the workload), a file or ``None`` passes it through.
    ``protected`` lists host paths no bind may expose (stockade's own keys and state).
    ``egress_resolver``/``egress_ranges``: the allowlist proxy's resolver and the non-public
    ranges the operator listed (tests pass a mapping resolver; nothing else needs them).
    ``pins``: (package directory, approved digest) pairs verified before the start.
    """
    s = _start(
        spec, state=state, run_id=run_id or uuid.uuid4().hex, secrets=secrets, audit=audit,
        stdin=stdin, stdout=stdout, stderr=stderr, protected=protected,
        egress_resolver=egress_resolver, egress_ranges=egress_ranges, pins=pins,
    )  # fmt: skip
    return s.handle(audit)


@dataclass
class _Started:
    """A sandbox process under its cgroup, not yet watched (the pool holds these)."""

    spec: SandboxSpec
    run_id: str
    backend: str
    proc: subprocess.Popen[bytes]
    prepared: Prepared
    cgroup: Cgroup
    live: LiveRun
    state: Path
    runsc: str | None
    proxy: EgressProxy | None

    def handle(self, audit: AuditSink | None, cpu_offset_ns: int = 0) -> Sandbox:
        return Sandbox(
            spec=self.spec, run_id=self.run_id, backend=self.backend, proc=self.proc,
            prepared=self.prepared, cgroup=self.cgroup, live=self.live, state=self.state,
            audit=audit, runsc=self.runsc, proxy=self.proxy, cpu_offset_ns=cpu_offset_ns,
        )  # fmt: skip

    def discard(self) -> None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            self.proc.kill()
            self.proc.wait(timeout=30)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        if self.proxy is not None:
            self.proxy.close()
        destroy(self.live, self.runsc)
        LiveRun.forget(self.state, self.run_id)


def _start(
    spec: SandboxSpec,
    *,
    state: Path,
    run_id: str,
    secrets: Any,
    audit: AuditSink | None,
    stdin: int | IO[Any] | None,
    stdout: int | IO[Any] | None,
    stderr: int | IO[Any] | None,
    protected: tuple[str, ...],
    egress_resolver: Callable[[str], list[str]],
    egress_ranges: tuple[IPNetwork, ...],
    pins: tuple[tuple[str, str], ...],
    argv_wrapper: Callable[[SandboxSpec], SandboxSpec] | None = None,
) -> _Started:
    backend = spec.runtime.value
    try:
        if os.geteuid() != 0:
            raise SandboxError(
                "the local sandbox runner needs root (to create cgroups and drop to the "
                "unprivileged sandbox uid)",
                "run stockade as root",
            )
        if spec.rootfs is not None or spec.image_digest is not None:
            check_image_spec(spec)
        image = spec.rootfs is not None
        if spec.network.mode == "allowlist" and not image and not Path(RELAY_PYTHON).is_file():
            raise SandboxError(
                f"network profile 'allowlist' needs {RELAY_PYTHON} in the sandbox for its relay",
                "install python3, or use --network none",
            )
        if spec.runtime == Runtime.KUBERNETES:
            raise SandboxError("runtime kubernetes is not a local runtime", "use gvisor")
        spec = check_spec_binds(spec, (str(state), *protected))
        if argv_wrapper is not None:
            spec = argv_wrapper(spec)
        for tree, digest in pins:
            verify_pin(Path(tree), digest)
        root = cgroup_root()
        rt = find_gvisor() if spec.runtime == Runtime.GVISOR else None
        bwrap = find_bwrap() if spec.runtime == Runtime.NAMESPACES else None
    except SandboxError as e:
        raise _refuse(audit, run_id, e) from None
    cgroup = open_cgroup(root, run_id)
    sweep_stale(cgroup, time.time(), keep=run_id)  # what a crashed runner left, empty and old
    prepared = Prepared(argv=[])
    live = LiveRun(
        run_id=run_id, backend=backend, container_id=f"stockade-{run_id}",
        runsc_root=str(state / "runsc"), cgroup_root=str(root),
        run_dir=str(state / "runs" / run_id), secrets_dir="", runner_pid=os.getpid(),
        runner_start=process_start_time(os.getpid()),
    )  # fmt: skip
    proxy: EgressProxy | None = None
    pair: NetPair | None = None
    landlock = False
    try:
        live.write(state)
        if spec.network.mode == "allowlist" and image:
            pair = NetPair.for_run(run_id)
            live = LiveRun(**{**asdict(live), "netns": f"{pair.workload} {pair.proxy}"})
            live.write(state)  # before the namespaces exist: a crash from here on is reaped
            spec, proxy = _with_image_egress(
                spec, pair, run_id=run_id, audit=audit, resolver=egress_resolver,
                ranges=egress_ranges,
            )  # fmt: skip
        elif spec.network.mode == "allowlist":
            spec, proxy, egress_dir = _with_egress(
                spec, run_id, audit, egress_resolver, egress_ranges
            )
            live = LiveRun(**{**asdict(live), "egress_dir": egress_dir})
            live.write(state)
        cgroup.create(
            memory_bytes=spec.memory_mb * 1024 * 1024,
            host_pids=host_pids_backstop(spec, backend),
            cpu_quota_us=100_000,
        )
        if rt is not None:
            prepared = prepare_gvisor(
                spec, rt, run_id=run_id, state=state, cgroup=cgroup, secrets=secrets, netns=pair
            )
        elif bwrap is not None:
            landlock = landlock_abi() > 0 and Path(RELAY_PYTHON).is_file()
            prepared = prepare_bwrap(spec, bwrap, cgroup=cgroup, secrets=secrets, landlock=landlock)
        else:
            raise SandboxError(f"no local backend for runtime {backend!r}", "use gvisor")
        live = LiveRun(**{**asdict(live), "secrets_dir": prepared.secrets_dir})
        live.write(state)
        if audit is not None:
            for name in spec.secrets:
                audit.append("sandbox.secret_delivered", {"name": name}, run_id=run_id)
        proc = subprocess.Popen(  # nosec B603
            prepared.argv,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            pass_fds=prepared.pass_fds,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
            cwd="/",
            start_new_session=True,
        )
        if not cgroup.wait_joined(proc.pid, lambda: proc.poll() is not None):
            proc.kill()
            proc.wait(timeout=30)
            for pipe in (proc.stdin, proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
            raise SandboxError(
                f"the sandbox process did not join its cgroup {cgroup.rel} (limits unenforced)",
                "check the cgroup hierarchy is writable by stockade",
            )
    except (StockadeError, OSError) as e:
        # Anything failing here (secret store, audit, cgroup, files) refuses and cleans up.
        if proxy is not None:
            proxy.close()
        destroy(live, rt.runsc if rt else None)
        LiveRun.forget(state, run_id)
        if isinstance(e, SandboxError):
            err = e
        elif isinstance(e, StockadeError):
            err = SandboxError(f"the sandbox could not be started: {e.what}", e.fix)
        else:
            err = SandboxError(
                f"the sandbox could not be started: {e}", "check the state directory and cgroups"
            )
        with contextlib.suppress(StockadeError):  # the audit sink may be what failed
            _refuse(audit, run_id, err)
        raise err from None
    finally:
        for fd in prepared.close_fds:
            with contextlib.suppress(OSError):
                os.close(fd)
    if audit is not None:
        data: dict[str, Any] = {"backend": backend, "spec": spec.model_dump(mode="json")}
        if rt is not None:
            data["platform"] = rt.platform
        else:
            data["gvisor_waived"] = True
            data["landlock"] = landlock
        audit.append("sandbox.launched", data, run_id=run_id)
    return _Started(
        spec=spec, run_id=run_id, backend=backend, proc=proc, prepared=prepared, cgroup=cgroup,
        live=live, state=state, runsc=rt.runsc if rt else None, proxy=proxy,
    )  # fmt: skip
