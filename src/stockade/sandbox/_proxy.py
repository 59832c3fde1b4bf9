"""The egress proxy: HTTP(S) only, to allowlisted domains, through a socket the runner provides.

``CONNECT host:port`` (TLS) and absolute-form plain HTTP requests are accepted. The proxy
resolves the name itself with the resolver it was given, checks the target, every resolved
address and (for CONNECT) the ClientHello's SNI, connects to exactly the checked address, and
records every allowed and blocked attempt in the audit log.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from stockade.models import AuditSink

from ._egress import EgressPolicy, check_addresses, check_agreement, check_target, parse_sni

__all__ = ["EgressProxy", "system_resolver"]

_MAX_HEAD = 16 * 1024
_IO_TIMEOUT_S = 30.0


def system_resolver(host: str) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return []
    return list(dict.fromkeys(str(i[4][0]) for i in infos))


class _Blocked(Exception):
    pass


def _read_head(conn: socket.socket) -> bytes:
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = conn.recv(4096)
        if not chunk:
            raise _Blocked("the client closed before a full request head")
        buf += chunk
        if len(buf) > _MAX_HEAD:
            raise _Blocked("the request head is larger than 16 KiB")
    return buf


def _headers(lines: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise _Blocked("a malformed header line")
        key = name.lower()
        if key in out:
            raise _Blocked(f"the header {name!r} appears twice")
        out[key] = value.strip()
    return out


def _splice(a: socket.socket, b: socket.socket) -> None:
    def pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    t = threading.Thread(target=pump, args=(b, a), daemon=True)
    t.start()
    pump(a, b)
    t.join(_IO_TIMEOUT_S)


class EgressProxy:
    """One proxy per run, listening on a Unix socket at ``path``."""

    def __init__(
        self,
        policy: EgressPolicy,
        path: Path,
        *,
        audit: AuditSink | None = None,
        run_id: str | None = None,
        resolver: Callable[[str], list[str]] = system_resolver,
    ) -> None:
        self.policy = policy
        self.path = path
        self._audit = audit
        self._run_id = run_id
        self._resolve = resolver
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(str(path))
        self._sock.listen(64)
        self._closed = False
        self._thread = threading.Thread(target=self._serve, daemon=True, name="egress-proxy")

    def start(self) -> EgressProxy:
        self._thread.start()
        return self

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._thread.join(5)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def _record(self, allowed: bool, data: dict[str, object]) -> None:
        if self._audit is not None:
            with self._lock:
                self._audit.append(
                    "egress.allowed" if allowed else "egress.blocked", dict(data),
                    run_id=self._run_id,
                )  # fmt: skip

    def _serve(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _check(self, host: str, port: int) -> str:
        """The one address to connect to: resolved once, every resolved address checked."""
        why = check_target(host, port, self.policy)
        if why:
            raise _Blocked(why)
        address, why = check_addresses(self._resolve(host), self.policy)
        if address is None:
            raise _Blocked(why or "no address")
        return address

    @staticmethod
    def _open(address: str, port: int) -> socket.socket:
        try:
            return socket.create_connection((address, port), timeout=_IO_TIMEOUT_S)
        except OSError as e:
            raise _Blocked(f"connecting to {address}:{port} failed: {e.strerror}") from None

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(_IO_TIMEOUT_S)
        info: dict[str, object] = {}
        upstream: socket.socket | None = None
        try:
            head = _read_head(conn)
            raw_head, _, rest = head.partition(b"\r\n\r\n")
            try:
                lines = raw_head.decode("ascii").split("\r\n")
            except UnicodeDecodeError:
                raise _Blocked("the request head is not ASCII") from None
            method, _, tail = lines[0].partition(" ")
            target, _, version = tail.partition(" ")
            hdrs = _headers(lines[1:])
            info = {"method": method[:16], "target": target[:300]}
            if method == "CONNECT":
                host, _, port_s = target.rpartition(":")
                if not port_s.isdigit():
                    raise _Blocked("CONNECT target has no port")
                why = check_agreement(host, hdrs.get("host", target).rsplit(":", 1)[0], None)
                if why:
                    raise _Blocked(why)
                address = self._check(host, int(port_s))
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                hello = rest or conn.recv(16384)
                sni = parse_sni(hello)
                if sni is None:
                    raise _Blocked("the tunnel did not start with a TLS ClientHello naming a host")
                why = check_agreement(host, None, sni)
                if why:
                    raise _Blocked(why)
                upstream = self._open(address, int(port_s))
                upstream.sendall(hello)
            else:
                parts = urlsplit(target)
                if parts.scheme != "http" or not parts.hostname or "@" in parts.netloc:
                    raise _Blocked("only absolute http:// URLs or CONNECT are proxied")
                if "transfer-encoding" in hdrs:
                    raise _Blocked("chunked request bodies are not proxied")
                host = parts.hostname
                why = check_agreement(host, hdrs.get("host"), None)
                if why:
                    raise _Blocked(why)
                address = self._check(host, parts.port or 80)
                upstream = self._open(address, parts.port or 80)
                path = parts.path or "/"
                if parts.query:
                    path += "?" + parts.query
                out = [f"{method} {path} {version}"]
                out += [
                    ln for ln in lines[1:]
                    if ln.split(":", 1)[0].lower() not in {"connection", "proxy-connection",
                                                            "proxy-authorization", "keep-alive"}
                ]  # fmt: skip
                out.append("Connection: close")
                upstream.sendall(("\r\n".join(out) + "\r\n\r\n").encode("ascii") + rest)
            info["address"] = address
            self._record(True, info)
            conn.settimeout(None)
            upstream.settimeout(None)
            _splice(conn, upstream)
        except _Blocked as e:
            info["reason"] = str(e)
            self._record(False, info)
            with contextlib.suppress(OSError):
                conn.sendall(b"HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n")
        except OSError as e:
            info["reason"] = f"i/o error: {e.strerror}"
            self._record(False, info)
        finally:
            for s in (conn, upstream):
                if s is not None:
                    with contextlib.suppress(OSError):
                        s.close()
