"""A gateway command server granted a network allowlist: its own egress proxy, as ``stockade run``.

The real ``stockade gateway --stdio`` in a child process, the server in gVisor, the real proxy;
the only test seam is the proxy's resolver (``allowed.test`` and ``other.test`` answer 127.0.0.1)
and the loopback range listed as reachable, set in the child before the CLI runs, because the
upstream HTTP server here is on loopback.
"""

from __future__ import annotations

import asyncio
import http.server
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import StdioServerParameters

from _gwclient import require_gvisor
from stockade.approvals._classify import rules_from_policy
from stockade.gateway import load_policy_for_gateway, sandbox_spec_for
from stockade.store import RunStore

pytestmark = [pytest.mark.gvisor]

POLICY = """\
version: 1
default: deny
servers:
  - name: fetch
    command: ["/usr/bin/python3", "srv/fetch.py", "{port}"]
    tofu: true
    network: [allowed.test]
    fs_allowlist:
      - path: srv/
    tools:
      rules:
        - tool: probe
          action: allow
          tier: low
"""

# An untrusted server that picks its own destinations: the allowlisted name and another one.
SERVER = """\
import json, sys, urllib.error, urllib.request
PORT = sys.argv[1]
def fetch(host):
    try:
        with urllib.request.urlopen(f"http://{host}:{PORT}/", timeout=20) as r:
            return f"{host}: {r.status} {r.read().decode()}"
    except urllib.error.HTTPError as e:
        return f"{host}: blocked {e.code}"
    except OSError as e:
        return f"{host}: failed {e}"
def send(msg):
    sys.stdout.write(json.dumps(msg) + "\\n"); sys.stdout.flush()
TOOL = {"name": "probe", "description": "Fetch two pages.",
        "inputSchema": {"type": "object", "properties": {}}}
for raw in sys.stdin:
    msg = json.loads(raw)
    method, rid = msg.get("method"), msg.get("id")
    if method == "initialize":
        send({"jsonrpc": "2.0", "id": rid, "result": {"protocolVersion": "2025-11-25",
              "capabilities": {"tools": {}}, "serverInfo": {"name": "fetch", "version": "1"}}})
    elif method == "tools/list":
        send({"jsonrpc": "2.0", "id": rid, "result": {"tools": [TOOL]}})
    elif method == "tools/call":
        text = "\\n".join(fetch(h) for h in ("allowed.test", "other.test"))
        send({"jsonrpc": "2.0", "id": rid, "result": {"content": [{"type": "text", "text": text}]}})
    elif rid is not None:
        send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": "no"}})
"""

# The child: the proxy's resolver and reachable ranges for this test, then the real CLI.
CHILD = """\
import functools, ipaddress, sys
import stockade.sandbox._service as service
names = {"allowed.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]}
service.launch = functools.partial(
    service.launch, egress_resolver=lambda h: names.get(h, []),
    egress_ranges=(ipaddress.ip_network("127.0.0.1/32"),),
)
from stockade.cli import main
sys.argv = ["stockade", *sys.argv[1:]]
main()
"""


class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"upstream-page"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        t.join(timeout=10)


def _policy(tmp_path: Path, port: int) -> Path:
    (tmp_path / "srv").mkdir()
    (tmp_path / "srv" / "fetch.py").write_text(SERVER)
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.format(port=port))
    return policy


@pytest.mark.guarantee("gw-server-network-allowlist")
def test_a_server_granted_an_allowlist_runs_with_it_and_the_classifier_treats_it_as_networked(
    tmp_path: Path,
) -> None:
    loaded = load_policy_for_gateway(_policy(tmp_path, 8080))
    (spec,) = loaded.config.servers
    boxed = sandbox_spec_for(spec)
    assert boxed.network.mode == "allowlist"
    assert boxed.network.domains == ("allowed.test",)
    # a networked server's resource identifiers are never waved through as non-network names
    assert rules_from_policy(loaded.policy, "fetch").network is True


async def _probe(tmp_path: Path, policy: Path) -> tuple[str, str]:
    from mcp import Client

    params = StdioServerParameters(
        command=sys.executable,
        args=["-c", CHILD, "gateway", "--policy", str(policy), "--stdio", "--approver", "list"],
        env={"PATH": "/usr/bin:/bin", "STOCKADE_HOME": str(tmp_path / "home")},
    )
    async with Client(params, read_timeout_seconds=90) as client:
        result = await client.call_tool("fetch__probe", {})
        trace = await client.call_tool("stockade__get_run_trace", {})
    text = result.content[0].text  # type: ignore[union-attr]
    run = trace.structured_content["servers"]["fetch"]["run"]  # type: ignore[index]
    return text, str(run["run_id"])


@pytest.mark.guarantee("gw-server-network-allowlist")
def test_a_gateway_server_reaches_its_allowlisted_name_and_another_name_is_blocked_and_counted(
    tmp_path: Path, upstream: int
) -> None:
    require_gvisor()
    policy = _policy(tmp_path, upstream)
    text, run_id = asyncio.run(asyncio.wait_for(_probe(tmp_path, policy), 180))
    assert "allowed.test: 200 upstream-page" in text, text
    assert "other.test: blocked 403" in text, text
    with RunStore.open(tmp_path / "home" / "runs.db") as store:
        record = store.get(run_id)
        assert record.network_profile == {"mode": "allowlist", "domains": ["allowed.test"]}
        blocked = store.egress_blocked()  # what stockade_egress_blocked_total reports
    assert ("fetch", "other.test", "not_allowlisted", 1) in blocked
    assert not any(domain == "allowed.test" for _, domain, _, _ in blocked)
    log = (tmp_path / "home" / "audit" / "audit.jsonl").read_text()
    assert "egress.blocked" in log
    assert "other.test" in log
