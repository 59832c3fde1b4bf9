"""The egress proxy's plain-HTTP path: keep-alive, chunked bodies, strict framing, adversarial
names and resolvers. Local upstream servers only; names are answered by a test resolver."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stockade.models import AuditEvent
from stockade.sandbox._egress import EgressPolicy
from stockade.sandbox._http1 import FramingError, parse_request_head
from stockade.sandbox._proxy import EgressProxy

LOOP = (ipaddress.ip_network("127.0.0.1/32"),)


class Sink:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def append(
        self, type: str, data: dict[str, Any], *, run_id: str | None = None,
        session_id: str | None = None,
    ) -> AuditEvent:  # fmt: skip
        self.events.append((type, data))
        return AuditEvent(seq=len(self.events), ts="t", type=type, prev="p", mac="m", data=data)

    def types(self) -> list[str]:
        return [t for t, _ in self.events]


class Upstream:
    """A local HTTP server: records each raw request (head and body) and sends ``response``."""

    def __init__(self, response: bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") -> None:
        self.response = response
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self.t = threading.Thread(target=self._serve, daemon=True)
        self.t.start()

    def _serve(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            c.settimeout(5)
            with contextlib.suppress(OSError):
                data = b""
                while b"\r\n\r\n" not in data and (chunk := c.recv(65536)):
                    data += chunk
                head = data.split(b"\r\n\r\n", 1)[0].lower()
                if b"transfer-encoding: chunked" in head:
                    while not data.endswith(b"0\r\n\r\n") and (chunk := c.recv(65536)):
                        data += chunk
                elif b"content-length:" in head:
                    n = int(head.split(b"content-length:")[1].split(b"\r\n")[0])
                    while len(data.split(b"\r\n\r\n", 1)[1]) < n and (chunk := c.recv(65536)):
                        data += chunk
                self.received.append(data)
                c.sendall(self.response)
            c.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    u = Upstream()
    yield u
    u.close()


ProxyFactory = Callable[..., tuple[EgressProxy, Sink]]


@pytest.fixture
def make_proxy(tmp_path: Path) -> Iterator[ProxyFactory]:
    made: list[EgressProxy] = []

    def make(
        resolver: Callable[[str], list[str]],
        domains: tuple[str, ...] = ("allowed.test",),
        ranges: tuple[Any, ...] = LOOP,
    ) -> tuple[EgressProxy, Sink]:
        sink = Sink()
        p = EgressProxy(EgressPolicy(domains, ranges), tmp_path / f"p{len(made)}.sock",
                        audit=sink, run_id="r1", resolver=resolver).start()  # fmt: skip
        made.append(p)
        return p, sink

    yield make
    for p in made:
        p.close()


def _static(mapping: dict[str, list[str]]) -> Callable[[str], list[str]]:
    return lambda h: list(mapping.get(h, []))


def _conn(path: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(str(path))
    return s


def _read_all(s: socket.socket) -> bytes:
    out = b""
    while chunk := s.recv(65536):
        out += chunk
    return out


def _read_response(s: socket.socket) -> bytes:
    """One response framed by Content-Length (what the test upstream sends)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, f"closed early: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    n = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(body) < n:
        body += s.recv(65536)
    return head + b"\r\n\r\n" + body


def _get(port: int, host: str = "allowed.test", extra: str = "") -> bytes:
    return f"GET http://{host}:{port}/p HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode()


@pytest.mark.guarantee("sandbox-egress-http-framing")
def test_two_requests_on_one_keep_alive_connection_are_both_forwarded_and_audited(
    make_proxy: ProxyFactory, upstream: Upstream
) -> None:
    p, sink = make_proxy(_static({"allowed.test": ["127.0.0.1"]}))
    s = _conn(p.path)
    s.sendall(_get(upstream.port))
    assert _read_response(s).endswith(b"ok")
    s.sendall(_get(upstream.port, extra="Connection: close\r\n"))
    rest = _read_all(s)
    s.close()
    assert rest.startswith(b"HTTP/1.1 200")
    assert rest.endswith(b"ok")
    assert len(upstream.received) == 2
    assert all(b"\r\nConnection: close\r\n" in r for r in upstream.received)
    assert sink.types() == ["egress.allowed", "egress.allowed"]


@pytest.mark.guarantee("sandbox-egress-http-framing")
def test_a_chunked_request_body_is_forwarded_validated_and_reframed(
    make_proxy: ProxyFactory, upstream: Upstream
) -> None:
    p, _ = make_proxy(_static({"allowed.test": ["127.0.0.1"]}))
    s = _conn(p.path)
    req = (f"POST http://allowed.test:{upstream.port}/u HTTP/1.1\r\nHost: allowed.test\r\n"
           "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
           "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")  # fmt: skip
    s.sendall(req.encode())
    assert _read_all(s).endswith(b"ok")
    s.close()
    got = upstream.received[0]
    assert got.startswith(b"POST /u HTTP/1.1\r\n")
    assert got.endswith(b"\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")


@pytest.mark.guarantee("sandbox-egress-http-framing")
def test_a_content_length_body_is_forwarded_exactly(
    make_proxy: ProxyFactory, upstream: Upstream
) -> None:
    p, _ = make_proxy(_static({"allowed.test": ["127.0.0.1"]}))
    s = _conn(p.path)
    s.sendall(_get(upstream.port, extra="Content-Length: 4\r\nConnection: close\r\n") + b"abcd")
    assert _read_all(s).endswith(b"ok")
    s.close()
    assert upstream.received[0].endswith(b"\r\nContent-Length: 4\r\nConnection: close\r\n\r\nabcd")


@pytest.mark.guarantee("sandbox-egress-http-framing")
@pytest.mark.parametrize(
    ("extra", "status"),
    [
        ("Content-Length: 4\r\nTransfer-Encoding: chunked\r\n", b"400"),
        ("Transfer-Encoding: chunked\r\nContent-Length: 4\r\n", b"400"),
        ("Transfer-Encoding: chunked, identity\r\n", b"501"),
        ("Transfer-Encoding: xchunked\r\n", b"501"),
        ("Content-Length: 4\r\nContent-Length: 5\r\n", b"400"),
        ("Content-Length: +4\r\n", b"400"),
        ("Content-Length: 4 4\r\n", b"400"),
        ("Transfer-Encoding : chunked\r\n", b"400"),
        (" Transfer-Encoding: chunked\r\n", b"400"),
        ("X-A: a\r\n\tTransfer-Encoding: chunked\r\n", b"400"),
        ("X-A: a\nTransfer-Encoding: chunked\r\n", b"400"),
    ],
)
def test_ambiguous_framing_is_refused_before_anything_reaches_the_upstream(
    make_proxy: ProxyFactory, upstream: Upstream, extra: str, status: bytes
) -> None:
    p, sink = make_proxy(_static({"allowed.test": ["127.0.0.1"]}))
    s = _conn(p.path)
    s.sendall(_get(upstream.port, extra=extra) + b"abcd0\r\n\r\n")
    out = _read_all(s)
    s.close()
    assert out.startswith(b"HTTP/1.1 " + status), out
    assert upstream.received == []
    assert sink.types() == ["egress.blocked"]


@pytest.mark.guarantee("sandbox-egress-http-framing")
def test_a_bad_chunk_size_ends_the_connection_and_smuggles_no_second_request(
    make_proxy: ProxyFactory, upstream: Upstream
) -> None:
    p, _ = make_proxy(_static({"allowed.test": ["127.0.0.1"]}))
    s = _conn(p.path)
    hidden = _get(upstream.port).decode()
    req = (f"POST http://allowed.test:{upstream.port}/u HTTP/1.1\r\nHost: allowed.test\r\n"
           f"Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n{hidden}")  # fmt: skip
    s.sendall(req.encode())
    out = _read_all(s)
    s.close()
    assert out.startswith(b"HTTP/1.1 400")
    assert all(b"GET /p" not in r for r in upstream.received)


@pytest.mark.guarantee("sandbox-egress-allowlist")
def test_a_pipelined_second_request_to_an_unlisted_host_is_checked_and_blocked(
    make_proxy: ProxyFactory, upstream: Upstream
) -> None:
    p, sink = make_proxy(_static({"allowed.test": ["127.0.0.1"], "evil.test": ["127.0.0.1"]}))
    s = _conn(p.path)
    s.sendall(_get(upstream.port, extra="Content-Length: 0\r\n") + _get(upstream.port, "evil.test"))
    out = _read_all(s)
    s.close()
    assert out.startswith(b"HTTP/1.1 200")
    assert b"HTTP/1.1 403" in out
    assert len(upstream.received) == 1
    assert sink.types() == ["egress.allowed", "egress.blocked"]
    assert "evil.test" in str(sink.events[1][1]["reason"])


@pytest.mark.guarantee("sandbox-egress-http-framing")
@pytest.mark.parametrize(
    ("response", "keeps"),
    [
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", True),
        (b"HTTP/1.1 204 No Content\r\n\r\n", True),
        (b"HTTP/1.1 200 OK\r\n\r\nuntil-close", False),
    ],
)
def test_responses_are_relayed_and_only_self_delimited_ones_keep_the_connection(
    make_proxy: ProxyFactory, response: bytes, keeps: bool
) -> None:
    up = Upstream(response)
    try:
        p, _ = make_proxy(_static({"allowed.test": ["127.0.0.1"]}))
        s = _conn(p.path)
        s.sendall(_get(up.port))
        s.settimeout(3)
        out = b""
        with contextlib.suppress(TimeoutError):
            while chunk := s.recv(65536):
                out += chunk
        s.close()
    finally:
        up.close()
    assert out.startswith(response.split(b"\r\n", 1)[0])
    assert (b"Connection: keep-alive" in out) == keeps
    assert (b"Connection: close" in out) == (not keeps)


@pytest.mark.guarantee("sandbox-egress-allowlist")
def test_a_rebinding_resolver_is_asked_once_per_request_and_its_second_answer_is_checked(
    make_proxy: ProxyFactory, upstream: Upstream
) -> None:
    answers = [["127.0.0.1"], ["169.254.169.254"]]
    calls: list[str] = []

    def rebinding(host: str) -> list[str]:
        calls.append(host)
        return answers[min(len(calls), 2) - 1]

    p, sink = make_proxy(rebinding)
    s = _conn(p.path)
    s.sendall(_get(upstream.port))
    assert _read_response(s).endswith(b"ok")
    s.sendall(_get(upstream.port))
    out = _read_all(s)
    s.close()
    assert out.startswith(b"HTTP/1.1 403")
    assert calls == ["allowed.test", "allowed.test"]
    assert len(upstream.received) == 1
    assert sink.types() == ["egress.allowed", "egress.blocked"]
    assert sink.events[0][1]["address"] == "127.0.0.1"


@pytest.mark.guarantee("sandbox-egress-allowlist")
@pytest.mark.parametrize(
    "request_text",
    [
        "GET http://[::1]:{port}/ HTTP/1.1\r\nHost: [::1]:{port}\r\n\r\n",
        "CONNECT [::1]:{port} HTTP/1.1\r\nHost: [::1]:{port}\r\n\r\n",
        "GET http://evilexample.com:{port}/ HTTP/1.1\r\nHost: evilexample.com\r\n\r\n",
        "CONNECT evilexample.com:{port} HTTP/1.1\r\n\r\n",
        "GET http://example.com:{port}/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
        "GET http://loop.example.com:{port}/ HTTP/1.1\r\nHost: loop.example.com\r\n\r\n",
        "GET http://meta.example.com:{port}/ HTTP/1.1\r\nHost: meta.example.com\r\n\r\n",
        "CONNECT meta.example.com:{port} HTTP/1.1\r\n\r\n",
        "CONNECT a.example.com:{port} HTTP/1.1\r\nHost: other.example.com\r\n\r\n",
    ],
)
def test_literals_lookalikes_and_listed_names_resolving_inward_are_blocked_and_audited(
    make_proxy: ProxyFactory, upstream: Upstream, request_text: str
) -> None:
    # No range is listed: a listed name that resolves to loopback or metadata is refused.
    names = {n: ["127.0.0.1"] for n in ("evilexample.com", "example.com", "loop.example.com")}
    names["meta.example.com"] = ["169.254.169.254"]
    names["a.example.com"] = ["93.184.215.14"]
    p, sink = make_proxy(_static(names), domains=("*.example.com",), ranges=())
    s = _conn(p.path)
    s.sendall(request_text.format(port=upstream.port).encode())
    out = _read_all(s)
    s.close()
    assert out.startswith(b"HTTP/1.1 403")
    assert upstream.received == []
    assert sink.types() == ["egress.blocked"]


def test_the_request_parser_keeps_order_and_reads_connection_semantics() -> None:
    r = parse_request_head(b"GET http://a.test/ HTTP/1.0\r\nHost: a.test\r\nX-B: 1")
    assert r.headers == (("Host", "a.test"), ("X-B", "1"))
    assert not r.keep_alive
    assert parse_request_head(b"GET / HTTP/1.1\r\nConnection: Close").keep_alive is False
    with pytest.raises(FramingError):
        parse_request_head(b"GET  / HTTP/1.1")
    with pytest.raises(FramingError):
        parse_request_head(b"GET / HTTP/2.0")
