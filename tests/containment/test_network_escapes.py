"""Network escapes: with the 'none' profile nothing outside the sandbox is reachable."""

from __future__ import annotations

import contextlib
import secrets
import socket
import subprocess
from collections.abc import Iterator

import pytest

from .conftest import Runner

CONNECT = """
import socket, sys
try:
    socket.create_connection((sys.argv[1] if len(sys.argv) > 1 else "{host}", {port}), timeout=2)
    print("CONNECTED")
except OSError as e:
    print("blocked", type(e).__name__)
"""


@pytest.fixture
def loopback_listener() -> Iterator[socket.socket]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.setblocking(False)
    yield srv
    srv.close()


def _accepted(srv: socket.socket) -> bool:
    try:
        conn, _ = srv.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


@pytest.mark.guarantee("sandbox-no-host-loopback")
def test_a_sandbox_cannot_connect_to_the_hosts_loopback(
    run: Runner, loopback_listener: socket.socket
) -> None:
    port = loopback_listener.getsockname()[1]
    r = run(CONNECT.format(host="127.0.0.1", port=port))
    assert "blocked" in r.stdout
    assert "CONNECTED" not in r.stdout
    assert not _accepted(loopback_listener)


@pytest.fixture
def netns_host() -> Iterator[tuple[str, socket.socket]]:
    """A veth pair into a network namespace this test creates; a listener on the host end."""
    tag = secrets.token_hex(3)
    ns, host_if, peer_if = f"stk-{tag}", f"stkh{tag}", f"stkp{tag}"
    addr, peer = "10.213.77.1", "10.213.77.2"

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)

    try:
        ip("netns", "add", ns)
    except (subprocess.CalledProcessError, FileNotFoundError) as e:
        pytest.skip(f"NETWORK NAMESPACES UNAVAILABLE: {e}")
    srv = socket.socket()
    try:
        ip("link", "add", host_if, "type", "veth", "peer", "name", peer_if, "netns", ns)
        ip("addr", "add", f"{addr}/30", "dev", host_if)
        ip("link", "set", host_if, "up")
        ip("-n", ns, "addr", "add", f"{peer}/30", "dev", peer_if)
        ip("-n", ns, "link", "set", peer_if, "up")
        srv.bind((addr, 0))
        srv.listen(8)
        srv.setblocking(False)
        yield addr, srv
    finally:
        srv.close()
        with contextlib.suppress(subprocess.CalledProcessError):
            ip("link", "del", host_if)
        ip("netns", "del", ns)


@pytest.mark.guarantee("sandbox-no-netns-host")
def test_a_sandbox_cannot_reach_a_host_on_another_network_namespace(
    run: Runner, netns_host: tuple[str, socket.socket]
) -> None:
    addr, srv = netns_host
    r = run(CONNECT.format(host=addr, port=srv.getsockname()[1]))
    assert "blocked" in r.stdout
    assert not _accepted(srv)


@pytest.mark.guarantee("sandbox-no-dns")
def test_a_sandbox_has_no_resolver_and_cannot_look_names_up(run: Runner) -> None:
    r = run(
        "import os, socket\n"
        "print('resolv', os.path.exists('/etc/resolv.conf'))\n"
        "try:\n"
        "    socket.getaddrinfo('stockade-containment.invalid', 80)\n"
        "    print('RESOLVED')\n"
        "except OSError as e:\n"
        "    print('blocked', e)\n"
        "print('ifaces', [n for _, n in socket.if_nameindex()])\n"
    )
    assert "resolv False" in r.stdout
    assert "blocked" in r.stdout
    assert "ifaces ['lo']" in r.stdout
