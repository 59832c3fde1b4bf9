"""Egress allowlist: the pure decisions and the proxy against local servers and a test resolver."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stockade.sandbox._egress import (
    EgressPolicy,
    check_addresses,
    check_agreement,
    check_target,
    parse_sni,
)
from stockade.sandbox._proxy import EgressProxy

from .test_refusal import ListSink

POLICY = EgressPolicy(domains=("api.example.com", "*.example.org"))


@pytest.mark.guarantee("sandbox-egress-allowlist")
@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("api.example.com", True),
        ("API.example.com.", True),
        ("x.api.example.com", False),
        ("evilexample.com", False),
        ("a.example.org", True),
        ("example.org", False),
        ("evilexample.org", False),
        ("127.0.0.1", False),
        ("[::1]", False),
        ("api.example.com@evil.test", False),
    ],
)
def test_only_listed_domains_and_strict_subdomains_of_wildcards_pass(
    host: str, allowed: bool
) -> None:
    assert (check_target(host, 443, POLICY) is None) == allowed


@pytest.mark.guarantee("sandbox-egress-allowlist")
@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "192.168.1.1", "172.16.0.1", "169.254.169.254", "100.64.0.1",
     "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "0.0.0.0", "224.0.0.1"],  # noqa: S104
)  # fmt: skip
def test_a_listed_domain_never_reaches_private_loopback_link_local_or_metadata(
    address: str,
) -> None:
    got, why = check_addresses(["93.184.215.14", address], POLICY)
    assert got is None
    assert why


@pytest.mark.guarantee("sandbox-egress-allowlist")
def test_a_non_public_range_passes_only_when_listed_and_the_checked_address_is_used() -> None:
    listed = EgressPolicy(("internal.test",), (ipaddress.ip_network("10.9.0.0/16"),))
    assert check_addresses(["10.9.1.2"], listed) == ("10.9.1.2", None)
    assert check_addresses(["10.8.1.2"], listed)[0] is None
    assert check_addresses(["93.184.215.14"], POLICY) == ("93.184.215.14", None)


@given(st.ip_addresses())
def test_any_address_that_passes_unlisted_is_global(ip: Any) -> None:
    got, _ = check_addresses([str(ip)], POLICY)
    if got is not None:
        assert ip.is_global


@pytest.mark.guarantee("sandbox-egress-allowlist")
def test_target_host_header_and_sni_must_agree() -> None:
    assert check_agreement("api.example.com", "api.example.com:443", "api.example.com") is None
    assert check_agreement("api.example.com", "evil.test", None)
    assert check_agreement("api.example.com", None, "evil.test")


def _client_hello(name: str) -> bytes:
    a, b = socket.socketpair()
    ctx = ssl.create_default_context()

    def go() -> None:
        with contextlib.suppress(OSError, ssl.SSLError):
            ctx.wrap_socket(a, server_hostname=name)

    t = threading.Thread(target=go)
    t.start()
    data = b.recv(65536)
    b.close()
    t.join(10)
    a.close()
    return data


def test_the_sni_of_a_real_client_hello_is_parsed_and_garbage_gives_none() -> None:
    assert parse_sni(_client_hello("api.example.com")) == "api.example.com"
    assert parse_sni(b"GET / HTTP/1.1\r\n\r\n") is None
    assert parse_sni(b"\x16\x03\x01\x00\x05\x01\x00") is None


class Upstream:
    """A local TCP server that records what it receives and answers a fixed HTTP response."""

    def __init__(self) -> None:
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
            try:
                self.received.append(c.recv(65536))
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            except OSError:
                pass
            c.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    u = Upstream()
    yield u
    u.close()


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[tuple[EgressProxy, ListSink]]:
    mapping = {
        "allowed.test": ["127.0.0.1"],
        # One listed address and one private one: the whole answer is refused.
        "mixed.test": ["127.0.0.1", "10.0.0.1"],
    }
    sink = ListSink()
    policy = EgressPolicy(
        domains=("allowed.test", "mixed.test"),
        allowed_ranges=(ipaddress.ip_network("127.0.0.1/32"),),
    )
    p = EgressProxy(policy, tmp_path / "proxy.sock", audit=sink, run_id="r1",
                    resolver=lambda h: mapping.get(h, [])).start()  # fmt: skip
    yield p, sink
    p.close()


def _ask(path: Path, data: bytes) -> bytes:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(str(path))
    s.sendall(data)
    out = b""
    while chunk := s.recv(65536):
        out += chunk
    s.close()
    return out


@pytest.mark.guarantee("sandbox-egress-allowlist")
def test_plain_http_to_an_allowed_domain_is_forwarded_and_audited(
    proxy: tuple[EgressProxy, ListSink], upstream: Upstream
) -> None:
    p, sink = proxy
    req = (
        f"GET http://allowed.test:{upstream.port}/x HTTP/1.1\r\nHost: allowed.test\r\n"
        "Connection: close\r\n\r\n"
    )
    assert _ask(p.path, req.encode()).endswith(b"ok")
    assert upstream.received[0].startswith(b"GET /x HTTP/1.1\r\n")
    assert sink.events[-1][0] == "egress.allowed"


@pytest.mark.guarantee("sandbox-egress-allowlist")
@pytest.mark.parametrize(
    "request_line",
    [
        "GET http://unlisted.test:{port}/ HTTP/1.1\r\nHost: unlisted.test\r\n\r\n",
        "GET http://127.0.0.1:{port}/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        "GET http://allowed.test:{port}/ HTTP/1.1\r\nHost: evil.test\r\n\r\n",
        "GET http://mixed.test:{port}/ HTTP/1.1\r\nHost: mixed.test\r\n\r\n",
        "CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n",
        "GET /relative HTTP/1.1\r\nHost: allowed.test\r\n\r\n",
    ],
)
def test_blocked_requests_get_403_reach_nothing_and_are_audited(
    proxy: tuple[EgressProxy, ListSink], upstream: Upstream, request_line: str
) -> None:
    p, sink = proxy
    out = _ask(p.path, request_line.format(port=upstream.port).encode())
    assert out.startswith(b"HTTP/1.1 403")
    assert upstream.received == []
    assert sink.events[-1][0] == "egress.blocked"


@pytest.mark.guarantee("sandbox-egress-allowlist")
def test_connect_forwards_a_client_hello_whose_sni_agrees_and_blocks_one_that_does_not(
    proxy: tuple[EgressProxy, ListSink], upstream: Upstream
) -> None:
    p, sink = proxy
    head = f"CONNECT allowed.test:{upstream.port} HTTP/1.1\r\nHost: allowed.test\r\n\r\n"
    out = _ask(p.path, head.encode() + _client_hello("allowed.test"))
    assert out.startswith(b"HTTP/1.1 200")
    assert parse_sni(upstream.received[0]) == "allowed.test"
    assert sink.events[-1][0] == "egress.allowed"
    upstream.received.clear()
    out = _ask(p.path, head.encode() + _client_hello("evil.test"))
    assert upstream.received == []
    assert sink.events[-1][0] == "egress.blocked"
    assert "SNI" in sink.events[-1][1]["reason"]
