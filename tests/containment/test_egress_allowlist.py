"""The allowlist profile: only the runner's proxy is reachable, and it reaches only listed names."""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterator

import pytest

from stockade.models import NetworkProfile

from .conftest import Runner

FETCH = """
import urllib.request, urllib.error, socket
for url in {urls!r}:
    try:
        body = urllib.request.urlopen(url, timeout=5).read().decode()
        print("GOT", url, body)
    except (urllib.error.URLError, OSError) as e:
        print("blocked", url, getattr(e, "code", "") or type(e).__name__)
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=2)
    print("DIRECT CONNECTED")
except OSError as e:
    print("direct blocked", type(e).__name__)
"""


class Origin:
    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.hits = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.hits += 1
            c.settimeout(5)
            try:
                c.recv(65536)
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
            except OSError:
                pass
            c.close()


@pytest.fixture
def origin() -> Iterator[Origin]:
    o = Origin()
    yield o
    o.sock.close()


@pytest.mark.guarantee("sandbox-egress-allowlist")
@pytest.mark.guarantee("sandbox-no-host-loopback")
def test_the_allowlist_profile_reaches_a_listed_name_only_through_the_proxy(
    run: Runner, origin: Origin
) -> None:
    mapping = {"allowed.test": ["127.0.0.1"], "unlisted.test": ["127.0.0.1"]}
    urls = [
        f"http://allowed.test:{origin.port}/",
        f"http://unlisted.test:{origin.port}/",
        f"http://127.0.0.1:{origin.port}/",
    ]
    r = run(
        FETCH.format(urls=urls, port=origin.port),
        network=NetworkProfile(mode="allowlist", domains=("allowed.test",)),
        launch_kw={
            "egress_resolver": lambda h: mapping.get(h, []),
            "egress_ranges": (ipaddress.ip_network("127.0.0.1/32"),),
        },
    )
    assert f"GOT {urls[0]} hello" in r.stdout, r.stdout + r.stderr
    assert f"blocked {urls[1]} 403" in r.stdout
    assert f"blocked {urls[2]} 403" in r.stdout
    assert "direct blocked" in r.stdout
    assert origin.hits == 1
    assert r.outcome.exit_code == 0
