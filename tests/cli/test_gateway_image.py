"""``stockade gateway`` serving an image server locally: verified first, then run in gVisor.

Everything is real: Debian's docker-registry on loopback, a busybox image built here whose
entrypoint is a tiny MCP stdio server in ``sh`` (one echo tool), a P-256 key made here signing it,
the stockade CLI as a child process, runsc.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

for _dir in ("integration", "gateway"):  # the image and loopback-egress helpers, reused
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / _dir))
from test_gateway_egress import CHILD, upstream  # noqa: E402
from test_image_run import Registry, new_key, push, registry, sign  # noqa: E402

from _gwclient import gateway_client, require_gvisor, stockade_cli  # noqa: E402
from stockade.gateway import load_any  # noqa: E402
from stockade.store import RunStore  # noqa: E402

pytestmark = [pytest.mark.gvisor, pytest.mark.registry]
__all__ = ["registry", "upstream"]  # fixtures reused: the loopback registry and HTTP server

# One JSON-RPC message a line in, one out: initialize, tools/list, tools/call of "echo".
MCP_SH = r"""
bb=/bin/busybox
field() { echo "$1" | $bb sed -n "s/.*\"$2\": *\(\"[^\"]*\"\|[0-9][0-9]*\).*/\1/p"; }
reply() { echo "{\"jsonrpc\":\"2.0\",\"id\":$id,$1}"; }
while IFS= read -r line; do
  id=$(field "$line" id)
  [ -z "$id" ] && continue
  case "$line" in
    *'"initialize"'*)
      reply "\"result\":{\"protocolVersion\":\"2025-11-25\",\"capabilities\":{\"tools\":{}},\
\"serverInfo\":{\"name\":\"shecho\",\"version\":\"1\"}}" ;;
    *'"tools/list"'*)
      reply "\"result\":{\"tools\":[{\"name\":\"echo\",\"description\":\"Echo a word.\",\
\"inputSchema\":{\"type\":\"object\",\"properties\":{\"word\":{\"type\":\"string\"}}}}]}" ;;
    *'"tools/call"'*)
      word=$(echo "$line" | $bb sed -n 's/.*"word": *"\([A-Za-z0-9-]*\)".*/\1/p')
      text="echo: $word from $($bb id -u)"
      if [ "$word" = net ]; then  # plain HTTP by hand, through the run's proxy ($http_proxy)
        proxy=${http_proxy#http://}; proxy=${proxy%/}
        text=$(for h in allowed.test other.test; do
          got=$(printf 'GET http://%s:%s/ HTTP/1.1\r\nHost: %s:%s\r\nConnection: close\r\n\r\n' \
            "$h" "$UPSTREAM_PORT" "$h" "$UPSTREAM_PORT" \
            | $bb nc -w 20 "${proxy%:*}" "${proxy##*:}" 2>&1 | $bb head -1 | $bb tr -d '\r"\\')
          echo "$got <- $h"
        done | $bb tr '\n' ' ')
      fi
      reply "\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"$text\"}]}" ;;
    *)
      reply "\"error\":{\"code\":-32601,\"message\":\"no\"}" ;;
  esac
done
"""

IMAGE_CONFIG: dict[str, object] = {
    "Entrypoint": ["/bin/busybox", "sh", "/mcp.sh"],
    "Cmd": [],
    "Env": ["PATH=/bin", "LD_PRELOAD=/evil.so"],
}

POLICY = """\
version: 1
default: deny
registries: ['{host}/stockade/*']
signatures:
  require_digest: true
  rules:
    - name: team
      keys: [keys/team.pub]
servers:
  - name: shecho
    image: {image}
    verify: [team]
    tofu: true
    start: lazy
{extra}    tools:
      rules:
        - tool: echo
          action: allow
          tier: low
"""


def _image(registry: Registry, tag: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Push the sh MCP server image (busybox plus /mcp.sh); its digest-pinned reference."""
    import test_image_run

    layer = test_image_run._layer
    monkeypatch.setattr(
        test_image_run,
        "_layer",
        lambda files, **k: layer({**files, "mcp.sh": MCP_SH.encode()}, **k),
    )
    return push(registry, "stockade/shecho", tag, config=IMAGE_CONFIG)


def _world(
    registry: Registry,
    tmp_path: Path,
    signer: str,
    monkeypatch: pytest.MonkeyPatch,
    extra: str = "",
) -> tuple[Path, Any]:
    require_gvisor()
    pdir = tmp_path / "policy"
    trusted = new_key(pdir / "keys" / "team.pub")
    untrusted = new_key(tmp_path / "other.pub")
    pinned = _image(registry, signer, monkeypatch)
    if signer == "team":
        sign(registry, pinned, trusted)
    elif signer == "other":
        sign(registry, pinned, untrusted)
    policy = pdir / "policy.yaml"
    policy.write_text(POLICY.format(host=registry.host, image=str(pinned), extra=extra))
    return policy, pinned


async def _session(tmp_path: Path, policy: Path, host: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    args = ("--approver", "list", "--plain-http", host)
    async with gateway_client(tmp_path, policy, *args, read_timeout_s=90) as client:
        seen["tools"] = [t.name for t in (await client.list_tools()).tools]
        seen["echo"] = await client.call_tool("shecho__echo", {"word": "hello"})
        seen["trace"] = await client.call_tool("stockade__get_run_trace", {})
    return seen


@pytest.mark.guarantee("gw-image-verified-before-serving")
@pytest.mark.guarantee("gw-image-pins-digest")
def test_a_signed_image_server_is_verified_served_in_gvisor_and_its_trace_shows_the_evidence(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy, pinned = _world(registry, tmp_path, "team", monkeypatch)
    seen = asyncio.run(asyncio.wait_for(_session(tmp_path, policy, registry.host), 240))
    assert "shecho__echo" in seen["tools"]
    text = seen["echo"].content[0].text
    assert "echo: hello from 65532" in text, text  # the unprivileged uid, not the image's root
    server = seen["trace"].structured_content["servers"]["shecho"]
    run = server["run"]
    assert run["backend"] == "gvisor"
    assert run["image_digest"] == pinned.digest
    assert run["workload"] == str(pinned)
    assert run["spec"]["rootfs"]
    assert ["LD_PRELOAD", "/evil.so"] not in run["spec"]["env"]  # the image's Env is filtered
    with RunStore.open(tmp_path / "home" / "runs.db") as store:
        kinds = {e.kind: e.data for e in store.evidence(run["run_id"])}
    assert kinds["verification"]["rule"] == "team"
    assert kinds["verification"]["registry_rule"] == f"{registry.host}/stockade/*"
    assert kinds["image"]["digest"] == pinned.digest
    # the tool pins bind to the verified image reference (a new digest is reviewed again)
    pins = json.loads((policy.parent / "pins" / "shecho.pins.json").read_text())
    assert pins["package"] == str(pinned)
    offline, _, _ = load_any(policy)  # what stockade tools diff|approve compare pins with
    assert offline.servers[0].package == pins["package"]
    assert "echo" in pins["tools"]


@pytest.mark.guarantee("gw-image-verified-before-serving")
@pytest.mark.parametrize("signer", ["other", "nobody"])
def test_an_image_server_signed_by_an_untrusted_key_or_unsigned_is_refused_before_serving(
    registry: Registry, tmp_path: Path, signer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy, _ = _world(registry, tmp_path, signer, monkeypatch)
    r = stockade_cli(
        tmp_path, "gateway", "--policy", str(policy), "--stdio", "--plain-http", registry.host
    )
    assert r.returncode != 0, r.stderr
    assert "server shecho: image" in r.stderr, r.stderr
    assert "refused (run " in r.stderr, r.stderr
    assert "signature" in r.stderr.lower(), r.stderr
    home = tmp_path / "home"
    with RunStore.open(home / "runs.db") as store:
        runs = store.list()
    assert [(x.server, x.status.value) for x in runs] == [("shecho", "refused")]
    assert not list((home / "sandbox" / "live").glob("*.json"))  # nothing ever started
    log = (home / "audit" / "audit.jsonl").read_text()
    assert "sandbox.refused" in log
    assert "gateway.start" not in log  # the gateway never began serving


async def _net_session(tmp_path: Path, policy: Path, host: str) -> str:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-c", CHILD, "gateway", "--policy", str(policy), "--stdio", "--plain-http", host],
        env={"PATH": "/usr/bin:/bin", "STOCKADE_HOME": str(tmp_path / "home")},
    )
    async with Client(params, read_timeout_seconds=90) as client:
        result = await client.call_tool("shecho__echo", {"word": "net"})
    return str(result.content[0].text)  # type: ignore[union-attr]


@pytest.mark.guarantee("gw-server-network-allowlist")
def test_an_image_server_granted_an_allowlist_reaches_that_name_only_through_its_proxy(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, upstream: int
) -> None:
    extra = f"    network: [allowed.test]\n    env: {{UPSTREAM_PORT: '{upstream}'}}\n"
    policy, _ = _world(registry, tmp_path, "team", monkeypatch, extra)
    text = asyncio.run(asyncio.wait_for(_net_session(tmp_path, policy, registry.host), 240))
    assert "HTTP/1.0 200 OK <- allowed.test" in text, text
    assert "403 Forbidden <- other.test" in text, text
    with RunStore.open(tmp_path / "home" / "runs.db") as store:
        blocked = store.egress_blocked()
    assert ("shecho", "other.test", "not_allowlisted", 1) in blocked
