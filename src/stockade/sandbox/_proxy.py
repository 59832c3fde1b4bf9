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
from ._http1 import FramingError, Reader, Request, parse_request_head, relay_body

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
    """A refused attempt; ``kind`` is one of :data:`._egress.BLOCK_KINDS` (a bounded set)."""

    def __init__(self, why: str, kind: str = "protocol") -> None:
        super().__init__(why)
        self.kind = kind


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


_HOP = frozenset({"connection", "proxy-connection", "proxy-authorization", "keep-alive",
                  "transfer-encoding", "content-length", "te", "upgrade", "trailer"})  # fmt: skip
_REASONS = {
    400: "Bad Request", 403: "Forbidden", 431: "Request Header Fields Too Large",
    501: "Not Implemented", 502: "Bad Gateway", 505: "HTTP Version Not Supported",
}  # fmt: skip


def _refuse(conn: socket.socket, status: int) -> None:
    line = f"HTTP/1.1 {status} {_REASONS.get(status, 'Refused')}\r\n"
    with contextlib.suppress(OSError):
        conn.sendall(line.encode() + b"Content-Length: 0\r\nConnection: close\r\n\r\n")


def _relay_response(up: Reader, conn: socket.socket, *, head_only: bool) -> bool:
    """Copy one response to the client; True if its framing lets the connection stay open."""
    while True:
        head = up.head()
        if head is None:
            raise FramingError("the upstream closed without a response", 502)
        lines = head.decode("latin-1").split("\r\n")
        status_s = lines[0].split(" ", 2)[1] if lines[0].count(" ") >= 1 else ""
        if not lines[0].startswith("HTTP/1.") or not status_s.isdigit():
            raise FramingError("the upstream answered something other than HTTP/1.x", 502)
        status = int(status_s)
        names = [ln.partition(":")[0].strip().lower() for ln in lines[1:]]
        values = {n: ln.partition(":")[2].strip() for n, ln in zip(names, lines[1:], strict=True)}
        if status in (100, 102, 103):
            conn.sendall(head + b"\r\n\r\n")
            continue
        break
    te, cl = values.get("transfer-encoding"), values.get("content-length")
    if te is not None and cl is not None:
        raise FramingError("the upstream response has both Content-Length and chunked", 502)
    if names.count("content-length") > 1 or (cl is not None and not cl.isdigit()):
        raise FramingError("the upstream response has an unusable Content-Length", 502)
    chunked = te is not None and te.lower() == "chunked"
    no_body = head_only or status in (204, 304) or status == 101
    length = 0 if no_body else (int(cl) if cl is not None else None)
    keep = no_body or chunked or cl is not None
    if te is not None and not chunked:
        keep, length = False, None
    kept = [
        ln for n, ln in zip(names, lines[1:], strict=True) if n not in ("connection", "keep-alive")
    ]
    out = "\r\n".join([lines[0], *kept, "Connection: " + ("keep-alive" if keep else "close")])
    conn.sendall(out.encode("latin-1") + b"\r\n\r\n")
    if not no_body:
        relay_body(up, conn, chunked=chunked, length=None if chunked else length)
    return keep and status != 101


def _splice(a: socket.socket, b: socket.socket) -> None:
    """Relay bytes both ways between two connected sockets until either side closes (blocking;
    each direction in its own thread). The local and the cluster egress proxy both use it."""

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
    """One proxy per run, listening on a Unix socket at ``path``, or on ``listener`` (a listening
    socket the runner made elsewhere: inside an image run's proxy namespace, whose file ``path``
    then names and which the proxy neither binds nor unlinks)."""

    def __init__(
        self,
        policy: EgressPolicy,
        path: Path,
        *,
        audit: AuditSink | None = None,
        run_id: str | None = None,
        resolver: Callable[[str], list[str]] = system_resolver,
        listener: socket.socket | None = None,
    ) -> None:
        self.policy = policy
        self.path = path
        self._audit = audit
        self._run_id = run_id
        self._resolve = resolver
        self._lock = threading.Lock()
        self._owns_path = listener is None
        if listener is not None:
            self._sock = listener
        else:
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
        if self._owns_path:
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
            raise _Blocked(why, "not_allowlisted")
        address, why = check_addresses(self._resolve(host), self.policy)
        if address is None:
            raise _Blocked(why or "no address", "address")
        return address

    @staticmethod
    def _open(address: str, port: int) -> socket.socket:
        try:
            return socket.create_connection((address, port), timeout=_IO_TIMEOUT_S)
        except OSError as e:
            raise _Blocked(
                f"connecting to {address}:{port} failed: {e.strerror}", "connect"
            ) from None

    def _plain(self, conn: socket.socket, first: bytes) -> None:
        """Serve plain-HTTP requests on one client connection until it closes or must close."""
        reader = Reader(conn, first)
        first_request = True
        while True:
            try:
                head = reader.head()
            except (TimeoutError, ConnectionResetError):
                if first_request:
                    raise
                return  # an idle kept-alive connection ends quietly (nothing was asked)
            first_request = False
            if head is None:
                return
            info: dict[str, object] = {}
            try:
                req = parse_request_head(head)
                info = {"method": req.method[:16], "target": req.target[:300]}
                keep = self._one(reader, conn, req, info)
            except _Blocked as e:
                info.update(reason=str(e), kind=e.kind)
                self._record(False, info)
                _refuse(conn, 403)
                return
            except FramingError as e:
                info.update(reason=f"malformed request: {e}", kind="malformed")
                self._record(False, info)
                _refuse(conn, e.status)
                return
            if not keep:
                return

    def _one(
        self, reader: Reader, conn: socket.socket, req: Request, info: dict[str, object]
    ) -> bool:
        """Forward one request and its response; True if the client connection may stay open."""
        if req.method == "CONNECT":
            raise _Blocked("CONNECT after a plain request on the same connection")
        parts = urlsplit(req.target)
        if parts.scheme != "http" or not parts.hostname or "@" in parts.netloc:
            raise _Blocked("only absolute http:// URLs or CONNECT are proxied")
        host = parts.hostname
        why = check_agreement(host, req.get("host"), None)
        if why:
            raise _Blocked(why, "mismatch")
        try:
            port = parts.port or 80
        except ValueError:
            raise _Blocked("the URL's port is not a number") from None
        address = self._check(host, port)
        upstream = self._open(address, port)
        try:
            path = parts.path or "/"
            if parts.query:
                path += "?" + parts.query
            out = [f"{req.method} {path} {req.version}"]
            out += [f"{k}: {v}" for k, v in req.headers if k.lower() not in _HOP]
            if req.chunked:
                out.append("Transfer-Encoding: chunked")
            elif req.length:
                out.append(f"Content-Length: {req.length}")
            out.append("Connection: close")
            info["address"] = address
            self._record(True, info)
            upstream.sendall(("\r\n".join(out) + "\r\n\r\n").encode("ascii"))
            relay_body(reader, upstream, chunked=req.chunked, length=req.length)
            return (
                _relay_response(Reader(upstream), conn, head_only=req.method == "HEAD")
                and req.keep_alive
            )
        finally:
            with contextlib.suppress(OSError):
                upstream.close()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(_IO_TIMEOUT_S)
        info: dict[str, object] = {}
        upstream: socket.socket | None = None
        try:
            head = _read_head(conn)
            if not head.startswith(b"CONNECT "):
                # Plain HTTP: strict framing, keep-alive to the client, one upstream per request.
                self._plain(conn, head)
                return
            raw_head, _, rest = head.partition(b"\r\n\r\n")
            try:
                lines = raw_head.decode("ascii").split("\r\n")
            except UnicodeDecodeError:
                raise _Blocked("the request head is not ASCII") from None
            method, _, tail = lines[0].partition(" ")
            target, _, _version = tail.partition(" ")
            hdrs = _headers(lines[1:])
            info = {"method": method[:16], "target": target[:300]}
            if method == "CONNECT":
                host, _, port_s = target.rpartition(":")
                if not port_s.isdigit():
                    raise _Blocked("CONNECT target has no port")
                why = check_agreement(host, hdrs.get("host", target).rsplit(":", 1)[0], None)
                if why:
                    raise _Blocked(why, "mismatch")
                address = self._check(host, int(port_s))
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                hello = rest or conn.recv(16384)
                sni = parse_sni(hello)
                if sni is None:
                    raise _Blocked("the tunnel did not start with a TLS ClientHello naming a host")
                why = check_agreement(host, None, sni)
                if why:
                    raise _Blocked(why, "mismatch")
                upstream = self._open(address, int(port_s))
                upstream.sendall(hello)
            else:
                raise _Blocked("only CONNECT and absolute http:// requests are proxied")
            info["address"] = address
            self._record(True, info)
            conn.settimeout(None)
            upstream.settimeout(None)
            _splice(conn, upstream)
        except _Blocked as e:
            info.update(reason=str(e), kind=e.kind)
            self._record(False, info)
            _refuse(conn, 403)
        except FramingError as e:
            info.update(reason=f"malformed request: {e}", kind="malformed")
            self._record(False, info)
            _refuse(conn, e.status)
        except OSError as e:
            info.update(reason=f"i/o error: {e.strerror}", kind="io")
            self._record(False, info)
        finally:
            for s in (conn, upstream):
                if s is not None:
                    with contextlib.suppress(OSError):
                        s.close()
