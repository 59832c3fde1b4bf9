"""Prepare one launch per backend: files, descriptors and the argv to spawn (the I/O edge)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

from stockade.errors import SandboxError
from stockade.models import SandboxSpec

from ._bwrap import bwrap_argv
from ._cgroup import Cgroup
from ._landlock import with_landlock
from ._layout import HostLayout, etc_files, host_layout
from ._netns import NetPair, mask_argv
from ._oci import guest_nofile, oci_config
from ._probe import GvisorRuntime
from ._protocols import SecretSource
from ._seccomp import compile_bpf, oci_seccomp

__all__ = ["Prepared", "host_pids_backstop", "prepare_bwrap", "prepare_gvisor"]

#: Host tmpfs for gVisor secret files (root-only parent, one 0500 dir per run).
SECRETS_SHM = Path("/dev/shm/stockade")  # nosec B108  # noqa: S108


def host_pids_backstop(spec: SandboxSpec, backend: str) -> int:
    """gVisor's own threads and ptrace stubs count against the host pids limit: a backstop."""
    if backend == "gvisor":
        return max(256, spec.pids * 4 + 128)
    return spec.pids + 2


@dataclass
class Prepared:
    argv: list[str]
    pass_fds: tuple[int, ...] = ()
    container_id: str = ""
    runsc_root: str = ""
    run_dir: str = ""
    secrets_dir: str = ""
    close_fds: list[int] = field(default_factory=list)


def _fetch(spec: SandboxSpec, secrets: SecretSource | None) -> dict[str, bytes]:
    if not spec.secrets:
        return {}
    if secrets is None:
        raise SandboxError(
            f"the run is granted secrets ({', '.join(spec.secrets)}) but no secret store was given",
            "configure a secret store (stockade secret put NAME)",
        )
    out = {}
    for name in spec.secrets:
        if not name or "/" in name or name.startswith("."):
            raise SandboxError(f"secret name {name!r} cannot be a file name", "rename the secret")
        out[name] = secrets.get(name)
    return out


def _memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(f"stockade-{name}", 0)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def prepare_gvisor(
    spec: SandboxSpec,
    rt: GvisorRuntime,
    *,
    run_id: str,
    state: Path,
    cgroup: Cgroup,
    secrets: SecretSource | None,
    netns: NetPair | None = None,
) -> Prepared:
    """``netns``: an image run's egress namespaces (the workload's is handed to runsc)."""
    values = _fetch(spec, secrets)
    run_dir = state / "runs" / run_id
    bundle = run_dir / "bundle"
    rootfs = bundle / "rootfs"
    rootfs.mkdir(parents=True, mode=0o755)
    # Traversal only (no listing): the sandbox user must reach the rootfs mount points.
    os.chmod(run_dir, 0o711)  # nosec B103  # noqa: S103
    os.chmod(bundle, 0o711)  # nosec B103  # noqa: S103
    if spec.rootfs is not None:
        # An image: its verified, unpacked rootfs is the (read-only) root; nothing of the host.
        layout = HostLayout(symlinks=(), ro_binds=())
    else:
        layout = host_layout()
        for link, target in layout.symlinks:
            os.symlink(target, rootfs / link.lstrip("/"))
        for d in ("proc", "dev", "tmp", "usr", "etc", "run"):
            (rootfs / d).mkdir(exist_ok=True)
        for name, text in etc_files(spec.uid, spec.gid).items():
            (rootfs / "etc" / name).write_text(text)
            os.chmod(rootfs / "etc" / name, 0o444)
    secrets_dir = ""
    if values:
        SECRETS_SHM.mkdir(mode=0o700, exist_ok=True)
        os.chmod(SECRETS_SHM, 0o700)
        sd = SECRETS_SHM / run_id
        sd.mkdir(mode=0o700)
        secrets_dir = str(sd)
        for name, value in values.items():
            fd = os.open(sd / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
            try:
                os.write(fd, value)
                os.fchown(fd, spec.uid, spec.gid)
            finally:
                os.close(fd)
        os.chown(sd, spec.uid, spec.gid)
        os.chmod(sd, stat.S_IRUSR | stat.S_IXUSR)
    for b in spec.binds:
        # Mount points inside the read-only rootfs must exist before runsc starts.
        point = rootfs / b.target.lstrip("/")
        if Path(b.source).is_dir():
            point.mkdir(parents=True, exist_ok=True)
        else:
            point.parent.mkdir(parents=True, exist_ok=True)
            point.touch(exist_ok=True)
    cfg = oci_config(
        spec,
        layout,
        cgroup_path=cgroup.rel,
        memory_bytes=spec.memory_mb * 1024 * 1024,
        host_pids=host_pids_backstop(spec, "gvisor"),
        secrets_source=secrets_dir or None,
    )
    cfg["linux"]["seccomp"] = oci_seccomp()
    if spec.rootfs is not None:
        cfg["root"] = {"path": spec.rootfs, "readonly": True}
    if netns is not None:
        for ns in cfg["linux"]["namespaces"]:
            if ns["type"] == "network":
                ns["path"] = netns.workload_path
    (bundle / "config.json").write_text(json.dumps(cfg, indent=1))
    runsc_root = state / "runsc"
    runsc_root.mkdir(mode=0o700, exist_ok=True)
    cid = f"stockade-{run_id}"
    flags = [f"--root={runsc_root}", f"--platform={rt.platform}", "--oci-seccomp"]
    # The sandbox never gets a network device: the allowlist profile speaks to the runner's
    # proxy through a bound Unix socket (host-uds=open lets the guest connect to it).
    # An image run's allowlist instead gets the veth of its own namespace (nothing else in it).
    if netns is not None:
        flags += ["--network=sandbox"]
    else:
        flags += ["--network=none"]
        if spec.network.mode == "allowlist":
            flags += ["--host-uds=open"]
    argv = [rt.runsc, *flags, "run", "--bundle", str(bundle), cid]
    if netns is not None:
        argv = mask_argv(netns, argv)
    return Prepared(
        argv=argv,
        container_id=cid,
        runsc_root=str(runsc_root),
        run_dir=str(run_dir),
        secrets_dir=secrets_dir,
    )


def _check_traversable(path: Path, uid: int, gid: int) -> None:
    """bwrap runs as the sandbox uid: every parent of a bind source must let it pass."""
    for parent in path.parents:
        st = parent.stat()
        if st.st_uid == uid:
            ok = bool(st.st_mode & stat.S_IXUSR)
        elif st.st_gid == gid:
            ok = bool(st.st_mode & stat.S_IXGRP)
        else:
            ok = bool(st.st_mode & stat.S_IXOTH)
        if not ok:
            raise SandboxError(
                f"bind source {str(path)!r} is unreachable for the sandbox uid {uid}: "
                f"{str(parent)!r} has mode {stat.S_IMODE(st.st_mode):o} (got no search right, "
                "expected o+x)",
                "bind a path under a directory the sandbox uid may traverse (chmod o+x)",
            )


def prepare_bwrap(
    spec: SandboxSpec,
    bwrap: str,
    *,
    cgroup: Cgroup,
    secrets: SecretSource | None,
    landlock: bool = False,
) -> Prepared:
    """bwrap runs as the unprivileged sandbox uid on the host (never root mapped inside).

    A root shell joins the run's cgroups first, then drops every privilege with setpriv and
    execs bwrap, so everything the sandbox forks is counted and killed with the cgroup.
    """
    for b in spec.binds:
        _check_traversable(Path(b.source), spec.uid, spec.gid)
    values = _fetch(spec, secrets)
    setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"
    for tool in ("setpriv", "prlimit"):
        if shutil.which(tool) is None:
            raise SandboxError(f"{tool} is not installed", "apt-get install util-linux")
    fds: list[int] = []
    try:
        seccomp_fd = compile_bpf()
        fds.append(seccomp_fd)
        etc = {n: _memfd(n, t.encode()) for n, t in etc_files(spec.uid, spec.gid).items()}
        fds += etc.values()
        sec = {n: _memfd("secret", v) for n, v in values.items()}
        fds += sec.values()
    except (OSError, SandboxError):
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        raise
    layout = host_layout()
    if landlock:
        spec = with_landlock(spec, layout, "/usr/bin/python3")
    inner = bwrap_argv(
        spec, layout, bwrap=bwrap, seccomp_fd=seccomp_fd, etc_fds=etc, secret_fds=sec
    )
    prlimit = shutil.which("prlimit") or "/usr/bin/prlimit"
    nofile = guest_nofile(spec)
    limits = [prlimit, f"--nofile={nofile}:{nofile}", "--core=0:0", "--"]
    drop = [*limits, setpriv, f"--reuid={spec.uid}", f"--regid={spec.gid}", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]  # fmt: skip
    files = cgroup.procs_files()
    script = "".join(f'echo $$ > "${i + 1}" && ' for i in range(len(files)))
    script += f"shift {len(files)} && exec " + '"$@"'
    argv = ["/bin/sh", "-c", script, "stockade-join", *map(str, files), *drop, "--", *inner]
    return Prepared(argv=argv, pass_fds=tuple(fds), close_fds=fds)
