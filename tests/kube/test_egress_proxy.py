"""The cluster egress proxy (``stockade k8s egress-proxy``) on loopback: a run's token admits it
to its own allowlist only; another run's name, a wrong token, no credentials or a departed run
get 407; a domain outside the run's allowlist gets 403; every refusal is logged. The upstream is
a loopback HTTP server; names resolve to it through the injected resolver."""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import ipaddress
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stockade.kube import ClusterEgressProxy, LineSink, Tenant, authenticate, load_tenants

TOKENS = {"ra": "a" * 43, "rb": "b" * 43}
LISTS = {"ra": "a.test", "rb": "b.test"}
WAIT_S = 10.0


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"hello {self.headers.get('Host')}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def upstream() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    t = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    t.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        t.join(WAIT_S)


def write_config(config: Path, tokens: dict[str, str], lists: dict[str, str]) -> None:
    for sub, entries in (("tokens", tokens), ("allowlists", lists)):
        d = config / sub
        d.mkdir(parents=True, exist_ok=True)
        for f in d.iterdir():
            f.unlink()
        for run, value in entries.items():
            data = hashlib.sha256(value.encode()).hexdigest() if sub == "tokens" else value
            (d / run).write_text(data)


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[tuple[ClusterEgressProxy, io.StringIO, Path]]:
    config, sockets = tmp_path / "config", tmp_path / "sockets"
    sockets.mkdir()
    write_config(config, TOKENS, LISTS)
    log = io.StringIO()
    p = ClusterEgressProxy(
        ("127.0.0.1", 0),
        config,
        sockets,
        audit=LineSink(log),
        resolver=lambda host: ["127.0.0.1"],
        allowed_ranges=(ipaddress.ip_network("127.0.0.0/8"),),
    ).start()
    try:
        yield p, log, config
    finally:
        p.close()


def basic(run: str, token: str) -> str:
    return "Basic " + base64.b64encode(f"{run}:{token}".encode()).decode()


def get(proxy: ClusterEgressProxy, url: str, auth: str | None) -> tuple[int, bytes]:
    host = url.split("/")[2]
    head = f"GET {url} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
    if auth is not None:
        head += f"Proxy-Authorization: {auth}\r\n"
    with socket.create_connection(proxy.address, timeout=WAIT_S) as s:
        s.sendall((head + "\r\n").encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data.partition(b"\r\n\r\n")[2]


def events(log: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.getvalue().splitlines()]


@pytest.mark.guarantee("k8s-egress-proxy-auth")
def test_a_run_with_its_token_reaches_its_own_allowlisted_domain(
    proxy: tuple[ClusterEgressProxy, io.StringIO, Path], upstream: int
) -> None:
    p, log, _ = proxy
    status, body = get(p, f"http://a.test:{upstream}/", basic("ra", TOKENS["ra"]))
    assert status == 200
    assert body == f"hello a.test:{upstream}".encode()
    (ev,) = [e for e in events(log) if e["type"] == "egress.allowed"]
    assert ev["run_id"] == "ra"


@pytest.mark.guarantee("k8s-egress-proxy-auth")
def test_a_run_cannot_reach_another_runs_allowlist_with_its_own_token(
    proxy: tuple[ClusterEgressProxy, io.StringIO, Path], upstream: int
) -> None:
    p, log, _ = proxy
    status, _ = get(p, f"http://b.test:{upstream}/", basic("ra", TOKENS["ra"]))
    assert status == 403
    (ev,) = [e for e in events(log) if e["type"] == "egress.blocked"]
    assert (ev["run_id"], ev["data"]["kind"]) == ("ra", "not_allowlisted")


@pytest.mark.guarantee("k8s-egress-proxy-auth")
@pytest.mark.parametrize(
    ("auth", "why"),
    [
        (basic("rb", TOKENS["ra"]), "not this run's"),  # another run's name, own token
        (basic("ra", "x" * 43), "not this run's"),
        (basic("gone", TOKENS["ra"]), "no live run"),
        (None, "no Proxy-Authorization"),
        ("Bearer " + TOKENS["ra"], "not Basic"),
        ("Basic !!!", "not base64"),
        (basic("Bad_Id", TOKENS["ra"]), "not a run id"),
    ],
)
def test_without_a_live_runs_own_token_the_proxy_answers_407_and_logs_it(
    proxy: tuple[ClusterEgressProxy, io.StringIO, Path], upstream: int, auth: str | None, why: str
) -> None:
    p, log, _ = proxy
    status, _ = get(p, f"http://b.test:{upstream}/", auth)
    assert status == 407
    (ev,) = events(log)
    assert ev["type"] == "egress.blocked"
    assert ev["data"]["kind"] == "auth"
    assert why in ev["data"]["reason"]
    assert TOKENS["ra"] not in log.getvalue()


@pytest.mark.guarantee("k8s-egress-proxy-auth")
def test_a_rolled_back_run_is_refused_at_its_next_connection(
    proxy: tuple[ClusterEgressProxy, io.StringIO, Path], upstream: int
) -> None:
    p, _, config = proxy
    assert get(p, f"http://a.test:{upstream}/", basic("ra", TOKENS["ra"]))[0] == 200
    write_config(config, {"rb": TOKENS["rb"]}, {"rb": LISTS["rb"]})
    assert get(p, f"http://a.test:{upstream}/", basic("ra", TOKENS["ra"]))[0] == 407
    assert get(p, f"http://b.test:{upstream}/", basic("rb", TOKENS["rb"]))[0] == 200


def test_a_run_missing_its_allowlist_or_its_token_is_not_served(tmp_path: Path) -> None:
    write_config(tmp_path, {"ra": "a" * 43, "rb": "b" * 43}, {"rb": "b.test", "rc": "c.test"})
    assert set(load_tenants(tmp_path)) == {"rb"}
    assert load_tenants(tmp_path / "absent") == {}


@given(run=st.text(max_size=50), token=st.text(max_size=80))
def test_only_the_exact_run_and_token_authenticate(run: str, token: str) -> None:
    tenants = {"ra": Tenant(hashlib.sha256(TOKENS["ra"].encode()).hexdigest(), ("a.test",))}
    got, _ = authenticate(tenants, basic(run, token))
    assert (got == "ra") == (run == "ra" and token == TOKENS["ra"])


def test_the_egress_proxy_command_refuses_a_listen_address_that_is_not_host_port(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from .test_cli import run_cli

    assert run_cli(["k8s", "egress-proxy", "--listen", "nowhere"]) != 0
    assert "HOST:PORT" in capsys.readouterr().err
