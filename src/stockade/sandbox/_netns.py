"""Allowlisted egress for an image run: a veth into a namespace holding only the proxy's socket.

An image's root has nothing of the host, so the in-sandbox relay of command runs cannot run
there. Instead the runner creates two network namespaces per run (named under ``/run/netns``):

* ``stockade-<run>-w``: the workload's. Its only interface besides loopback is ``eth0``
  (:data:`WORKLOAD_ADDR`/30, no route other than the /30 itself); runsc
  (``--network=sandbox``) takes it over into gVisor's network stack.
* ``stockade-<run>-p``: the proxy's. Its only interface is the veth's other end ``px0``
  (:data:`PROXY_ADDR`/30, loopback left down) and the only socket ever made in it is the run's
  proxy listener, made by a short-lived thread that ``setns``-ed into it. The proxy's upstream
  connections are made by threads in the runner's own namespace.

Nothing routes anywhere: forwarding has no second interface to go to, IPv6 is off in both. The
workload can reach exactly one listening socket, the proxy's. Deleting both namespaces removes
the veth; :func:`delete_pair` tolerates what is already gone (the reaper calls it too).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import socket
import subprocess  # nosec B404
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from stockade.errors import SandboxError

__all__ = [
    "NETNS_DIR",
    "PROXY_ADDR",
    "PROXY_PORT",
    "WORKLOAD_ADDR",
    "NetPair",
    "check_tools",
    "create_pair",
    "delete_pair",
    "mask_argv",
]

NETNS_DIR = Path("/run/netns")
PROXY_ADDR = "10.253.0.1"
WORKLOAD_ADDR = "10.253.0.2"
PROXY_PORT = 3128
_CLONE_NEWNET = 0x40000000
_T = TypeVar("_T")
_TOOLS = ("ip", "unshare", "nsenter", "mount")
_SYSCTLS = (
    "net/ipv6/conf/all/disable_ipv6",
    "net/ipv6/conf/default/disable_ipv6",
    "net/ipv4/ip_forward",
)


@dataclass(frozen=True)
class NetPair:
    workload: str  # netns name (its path is NETNS_DIR / name)
    proxy: str

    @property
    def workload_path(self) -> str:
        return str(NETNS_DIR / self.workload)

    @staticmethod
    def for_run(run_id: str) -> NetPair:
        return NetPair(workload=f"stockade-{run_id}-w", proxy=f"stockade-{run_id}-p")


def _tool(name: str, domains: tuple[str, ...] = ()) -> str:
    path = shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if path is None:
        listed = f" (the policy allowlists {', '.join(domains)})" if domains else ""
        raise SandboxError(
            f"image runs get no egress on this host{listed}: allowlisted egress for an image "
            f"run needs {name!r} (got none on PATH) to build the run's veth and namespaces, and "
            "stockade will not run the image silently without the network it was granted",
            "apt-get install iproute2 util-linux, or set network: none for the image server "
            "(or pass --network none)",
        )
    return path


def check_tools(domains: tuple[str, ...]) -> None:
    """Refuse (fail closed) when the mechanism cannot be built on this host."""
    for name in _TOOLS:
        _tool(name, domains)


def _ip(*args: str) -> None:
    r = subprocess.run(  # nosec B603
        [_tool("ip"), *args], capture_output=True, text=True, timeout=30, check=False
    )
    if r.returncode != 0:
        raise SandboxError(
            f"setting up the image run's egress namespaces failed: ip {' '.join(args)} exited "
            f"{r.returncode} ({r.stderr.strip()[:200]})",
            "check that stockade runs as root with CAP_NET_ADMIN",
        )


def _in_netns(name: str, job: Callable[[], _T]) -> _T:
    """Run ``job()`` on a fresh thread that joined netns ``name`` (the thread then ends)."""
    out: dict[str, _T] = {}
    failed: list[OSError] = []

    def body() -> None:
        try:
            fd = os.open(NETNS_DIR / name, os.O_RDONLY | os.O_CLOEXEC)
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                if libc.setns(fd, _CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns into {name}: {os.strerror(err)}")
            finally:
                os.close(fd)
            out["value"] = job()
        except OSError as e:
            failed.append(e)

    t = threading.Thread(target=body, name=f"netns-{name}", daemon=True)
    t.start()
    t.join(30)
    if t.is_alive() or "value" not in out:
        why = failed[0] if failed else "timed out after 30 s"
        raise SandboxError(
            f"working inside network namespace {name} failed: {why}",
            "check that stockade runs as root with CAP_SYS_ADMIN and CAP_NET_ADMIN",
        )
    return out["value"]


def _harden() -> None:
    for key in _SYSCTLS:
        with open(f"/proc/sys/{key}", "w") as f:
            f.write("1\n" if "ipv6" in key else "0\n")


def _listen() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((PROXY_ADDR, PROXY_PORT))
        s.listen(64)
    except OSError:
        s.close()
        raise
    return s


def create_pair(pair: NetPair) -> socket.socket:
    """Build both namespaces and the veth; return the proxy's listener made inside ``pair.proxy``.

    On any failure what was built is deleted and :class:`SandboxError` raised.
    """
    try:
        _ip("netns", "add", pair.workload)
        _ip("netns", "add", pair.proxy)
        _in_netns(pair.workload, _harden)
        _in_netns(pair.proxy, _harden)
        _ip("-n", pair.workload, "link", "add", "eth0", "type", "veth",
            "peer", "name", "px0", "netns", pair.proxy)  # fmt: skip
        _ip("-n", pair.workload, "addr", "add", f"{WORKLOAD_ADDR}/30", "dev", "eth0")
        _ip("-n", pair.proxy, "addr", "add", f"{PROXY_ADDR}/30", "dev", "px0")
        _ip("-n", pair.workload, "link", "set", "eth0", "up")
        _ip("-n", pair.proxy, "link", "set", "px0", "up")
        return _in_netns(pair.proxy, _listen)
    except SandboxError:
        delete_pair(pair)
        raise


def delete_pair(pair: NetPair) -> None:
    """Delete both namespaces (the veth goes with them); what is already gone is fine."""
    ip = shutil.which("ip", path="/usr/sbin:/usr/bin:/sbin:/bin")
    for name in (pair.workload, pair.proxy):
        if not name.startswith("stockade-") or "/" in name:
            continue  # never a namespace stockade did not name
        if ip is not None and (NETNS_DIR / name).exists():
            subprocess.run(  # nosec B603
                [ip, "netns", "delete", name], capture_output=True, timeout=30, check=False
            )


def mask_argv(pair: NetPair, argv: list[str]) -> list[str]:
    """``argv`` (runsc) in a private mount namespace in which the workload namespace's
    ``/proc/sys/net/core`` is hidden.

    The installed runsc (2022-12) decides it was given the host's own namespace when
    ``/proc/sys/net/core/rmem_default`` exists there, which newer kernels show in every network
    namespace; the mask (seen only by this runsc, only for the run's namespace) lets it take the
    veth. The runner's own mount namespace and the host's namespace are untouched.
    """
    script = (
        '"$1" --net="$2" "$3" -t tmpfs -o ro,size=4k,mode=0555 stockade-mask /proc/sys/net/core '
        '&& shift 3 && exec "$@"'
    )
    return [
        _tool("unshare"), "--mount", "--propagation", "private", "--",
        "/bin/sh", "-c", script, "stockade-mask",
        _tool("nsenter"), pair.workload_path, _tool("mount"), *argv,
    ]  # fmt: skip
