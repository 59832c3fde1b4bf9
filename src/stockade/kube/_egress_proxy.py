"""The egress proxy in the cluster (``stockade k8s egress-proxy``): one TCP listener shared by
every allowlist run, each run authenticated by its own token.

Per connection: read the first request head, take ``Proxy-Authorization: Basic
base64(run-id:token)``, and accept it only when SHA-256(token) equals the hash stored for that run
(``tokens/<run-id>``, constant-time compare); anything else is answered ``407`` and logged as
``egress.blocked`` with ``kind: auth``. An authenticated connection is handed, head included, to
that run's own ``EgressProxy`` (the local runs' proxy, ``stockade.sandbox.EgressProxy``) with its
allowlist from ``allowlists/<run-id>`` (the same checks as a local run: names resolved by the
proxy, every address checked, SNI and Host agreeing, every attempt logged with the run id).
So a run cannot use another run's allowlist: it would need that run's token.

The configuration directory is the mounted ConfigMap and Secret, re-read on every connection (a
run the kubelet has not synced yet is refused; a rolled-back run is refused and its per-run proxy
closed). Events go to stdout as JSON lines (collected as the Pod's log).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import json
import socket
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from stockade.models import AuditEvent
from stockade.sandbox import splice  # the local proxy's own relay

from ._errors import KubeError
from ._names import check_run_id
from ._proxy_objects import token_hash

__all__ = ["ClusterEgressProxy", "LineSink", "Tenant", "authenticate", "load_tenants"]

_MAX_HEAD = 16 * 1024
_IO_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Tenant:
    """One run the proxy serves: the hash of its token and its domain allowlist."""

    token_sha256: str
    domains: tuple[str, ...]


def _entries(directory: Path) -> dict[str, str]:
    """A mounted ConfigMap/Secret: one file per key (the kubelet's ``..data`` links skipped)."""
    if not directory.is_dir():
        return {}
    out: dict[str, str] = {}
    for f in sorted(directory.iterdir()):
        if f.name.startswith(".") or not f.is_file():
            continue
        out[f.name] = f.read_text(encoding="utf-8")
    return out


def load_tenants(config: Path) -> dict[str, Tenant]:
    """Runs with both a token hash and an allowlist (a run missing either is not served)."""
    tokens, lists = _entries(config / "tokens"), _entries(config / "allowlists")
    return {
        run: Tenant(
            tokens[run].strip(), tuple(d.strip() for d in lists[run].splitlines() if d.strip())
        )
        for run in sorted(set(tokens) & set(lists))
    }


def authenticate(tenants: Mapping[str, Tenant], header: str | None) -> tuple[str | None, str]:
    """(run id, "") when ``header`` proves a run's token; else (None, why). Pure."""
    if header is None:
        return None, "no Proxy-Authorization header"
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None, "Proxy-Authorization is not Basic"
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None, "Proxy-Authorization is not base64 of run-id:token"
    run, sep, token = decoded.partition(":")
    try:
        check_run_id(run)
    except KubeError:
        return None, "the user name is not a run id"
    tenant = tenants.get(run)
    if not sep or tenant is None:
        return None, "no live run has this id"
    if not hmac.compare_digest(token_hash(token), tenant.token_sha256):
        return None, "the token is not this run's"
    return run, ""


class LineSink:
    """An ``AuditSink`` writing each event as one JSON line (the Pod's log). Not hash-chained:
    the cluster's log collection keeps it."""

    def __init__(self, out: IO[str] | None = None, clock: Callable[[], datetime] | None = None):
        self._out = out or sys.stdout
        self._now = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._seq = 0

    def append(
        self,
        type: str,
        data: dict[str, Any],
        *,
        run_id: str | None = None,
        session_id: str | None = None,
    ) -> AuditEvent:
        with self._lock:
            ev = AuditEvent(
                seq=self._seq, ts=self._now().isoformat(), type=type, run_id=run_id,
                session_id=session_id, data=dict(data), prev="", mac="",
            )  # fmt: skip
            self._seq += 1
            self._out.write(json.dumps(ev.model_dump(mode="json"), sort_keys=True) + "\n")
            self._out.flush()
        return ev


def _head(conn: socket.socket) -> bytes:
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = conn.recv(4096)
        if not chunk or len(buf) + len(chunk) > _MAX_HEAD:
            return b""
        buf += chunk
    return buf


def _proxy_auth(head: bytes) -> str | None:
    lines = head.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]
    for line in lines:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"proxy-authorization":
            return value.strip().decode("latin-1")
    return None


def _target(head: bytes) -> str:
    first = head.split(b"\r\n", 1)[0].decode("latin-1", "replace")
    return first[:300]


class ClusterEgressProxy:
    """Listens on ``listen``; per-run :class:`EgressProxy` instances on Unix sockets in
    ``sockets``. ``resolver``/``allowed_ranges`` as for the local proxy (tests only)."""

    def __init__(
        self,
        listen: tuple[str, int],
        config: Path,
        sockets: Path,
        *,
        audit: Any,
        resolver: Callable[[str], list[str]] | None = None,
        allowed_ranges: tuple[Any, ...] = (),
    ) -> None:
        self._config = config
        self._sockets = sockets
        self._audit = audit
        self._resolver = resolver
        self._ranges = allowed_ranges
        self._lock = threading.Lock()
        self._runs: dict[str, tuple[tuple[str, ...], Any]] = {}
        self._sock = socket.create_server(listen)
        self._closed = False
        self._thread = threading.Thread(target=self._serve, daemon=True, name="cluster-egress")

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._sock.getsockname()[:2]
        return str(host), int(port)

    def start(self) -> ClusterEgressProxy:
        self._thread.start()
        return self

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._thread.join(5)
        with self._lock:
            for _, proxy in self._runs.values():
                proxy.close()
            self._runs.clear()

    def _serve(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _run_proxy(self, run: str, tenants: Mapping[str, Tenant]) -> Path:
        """This run's own proxy (created on first use); proxies of departed runs are closed."""
        from stockade.sandbox import EgressPolicy, EgressProxy  # the local runner's own proxy

        with self._lock:
            for gone in [r for r in self._runs if r not in tenants]:
                self._runs.pop(gone)[1].close()
            domains = tenants[run].domains
            cur = self._runs.get(run)
            if cur is not None and cur[0] != domains:
                self._runs.pop(run)[1].close()
                cur = None
            if cur is None:
                kw: dict[str, Any] = {} if self._resolver is None else {"resolver": self._resolver}
                proxy = EgressProxy(
                    EgressPolicy(domains, self._ranges),
                    self._sockets / f"{run}.sock",
                    audit=self._audit,
                    run_id=run,
                    **kw,
                ).start()
                cur = self._runs[run] = (domains, proxy)
            return Path(cur[1].path)

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(_IO_TIMEOUT_S)
        try:
            head = _head(conn)
            tenants = load_tenants(self._config)
            run, why = authenticate(tenants, _proxy_auth(head) if head else None)
            if run is None:
                self._audit.append(
                    "egress.blocked",
                    {"kind": "auth", "reason": why or "no request head", "target": _target(head)},
                )
                conn.sendall(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                    b'Proxy-Authenticate: Basic realm="stockade"\r\n'
                    b"Content-Length: 0\r\nConnection: close\r\n\r\n"
                )
                return
            path = self._run_proxy(run, tenants)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as inner:
                inner.connect(str(path))
                inner.sendall(head)
                conn.settimeout(None)
                splice(conn, inner)
        except OSError:
            return
        finally:
            with contextlib.suppress(OSError):
                conn.close()
