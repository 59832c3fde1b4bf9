"""Strict HTTP/1.1 framing for the egress proxy's plain-HTTP path.

Anything ambiguous is refused rather than interpreted: a request with both ``Content-Length``
and ``Transfer-Encoding`` (the classic smuggling pair), a transfer coding other than exactly
``chunked``, a non-numeric or repeated length, bare CR/LF in the head, obsolete line folding,
whitespace before a colon, chunk sizes that are not plain hex, or trailers.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

__all__ = ["FramingError", "Reader", "Request", "parse_request_head", "relay_body"]

MAX_HEAD = 16 * 1024
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_HEX = frozenset("0123456789abcdefABCDEF")


class FramingError(Exception):
    """The message is malformed or ambiguous; ``status`` is the answer to give the client."""

    def __init__(self, why: str, status: int = 400) -> None:
        super().__init__(why)
        self.status = status


class Reader:
    """A buffered reader over a socket (lines and exact byte counts)."""

    def __init__(self, sock: socket.socket, initial: bytes = b"") -> None:
        self.sock = sock
        self.buf = initial

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buf += data
        return bool(data)

    def head(self) -> bytes | None:
        """A full head up to the empty line, or None if the peer closed before sending any."""
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > MAX_HEAD:
                raise FramingError("the message head is larger than 16 KiB", 431)
            if not self._fill():
                if self.buf:
                    raise FramingError("the peer closed in the middle of a message head")
                return None
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        if len(head) > MAX_HEAD:
            raise FramingError("the message head is larger than 16 KiB", 431)
        return head

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            if len(self.buf) > 4096:
                raise FramingError("a chunk line is longer than 4 KiB")
            if not self._fill():
                raise FramingError("the peer closed in the middle of a chunked body")
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise FramingError("the peer closed before the announced body length")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def some(self) -> bytes:
        if not self.buf:
            self._fill()
        out, self.buf = self.buf, b""
        return out


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    version: str
    headers: tuple[tuple[str, str], ...]  # (name as sent, value), order kept
    chunked: bool
    length: int  # Content-Length, 0 when absent or chunked
    keep_alive: bool

    def get(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None


def parse_headers(lines: list[str]) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep or not name or not set(name) <= _TOKEN:
            raise FramingError(f"a malformed header line {line[:60]!r}")
        if any(c in value for c in "\r\n\x00"):
            raise FramingError("a header value holds CR, LF or NUL")
        if name.lower() in seen:
            raise FramingError(f"the header {name!r} appears twice")
        seen.add(name.lower())
        out.append((name, value.strip(" \t")))
    return tuple(out)


def parse_request_head(head: bytes) -> Request:
    """Parse and validate a request head (pure)."""
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        raise FramingError("the request head is not ASCII") from None
    lines = text.split("\r\n")
    if any("\n" in ln or "\r" in ln for ln in lines):
        raise FramingError("a bare CR or LF in the request head")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[0] or not set(parts[0]) <= _TOKEN:
        raise FramingError("the request line is not METHOD TARGET VERSION")
    method, target, version = parts
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise FramingError(f"unsupported HTTP version {version[:20]!r}", 505)
    hdrs = parse_headers(lines[1:])
    req = Request(method, target, version, hdrs, False, 0, True)
    te, cl = req.get("transfer-encoding"), req.get("content-length")
    if te is not None and cl is not None:
        raise FramingError("both Content-Length and Transfer-Encoding (request smuggling)")
    chunked = False
    length = 0
    if te is not None:
        if te.lower() != "chunked":
            raise FramingError(f"transfer coding {te[:40]!r} (only 'chunked')", 501)
        if version == "HTTP/1.0":
            raise FramingError("Transfer-Encoding on an HTTP/1.0 request")
        chunked = True
    if cl is not None:
        if not cl.isdigit() or not cl.isascii() or len(cl) > 15:
            raise FramingError(f"Content-Length {cl[:20]!r} is not a plain number")
        length = int(cl)
    conn = (req.get("connection") or "").lower()
    tokens = {t.strip() for t in conn.split(",")}
    keep = "keep-alive" in tokens if version == "HTTP/1.0" else "close" not in tokens
    return Request(method, target, version, hdrs, chunked, length, keep)


def relay_body(src: Reader, dst: socket.socket, *, chunked: bool, length: int | None) -> None:
    """Copy one body from ``src`` to ``dst`` with the same framing, validating it.

    ``length`` None (and not chunked) means the body runs until ``src`` closes.
    """
    if chunked:
        while True:
            line = src.line()
            size_s = line.split(b";", 1)[0].decode("ascii", "replace")
            if not size_s or len(size_s) > 12 or not set(size_s) <= _HEX:
                raise FramingError(f"chunk size {size_s[:20]!r} is not plain hex")
            size = int(size_s, 16)
            if size == 0:
                if src.line() != b"":
                    raise FramingError("chunked trailers are not proxied")
                dst.sendall(b"0\r\n\r\n")
                return
            data = src.exactly(size)
            if src.exactly(2) != b"\r\n":
                raise FramingError("a chunk is not followed by CRLF")
            dst.sendall(b"%x\r\n" % size + data + b"\r\n")
    elif length is not None:
        left = length
        while left:
            data = src.exactly(min(left, 65536))
            dst.sendall(data)
            left -= len(data)
    else:
        while data := src.some():
            dst.sendall(data)
