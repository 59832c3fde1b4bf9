"""The public MCP conformance suite (@modelcontextprotocol/conformance), server scenarios.

Run twice: against server-everything's own Streamable HTTP endpoint, and against
``stockade gateway --http`` fronting server-everything sandboxed in gVisor, served from a real
stockade policy. The suite cannot send a bearer token, so the gateway runs with
``--unsafe-no-auth`` (loopback only, audited). Every scenario that passes directly must pass
through the gateway, and ``dns-rebinding-protection`` must pass through the gateway.

The subscribe scenarios use the raw uri ``test://watched-resource``, which server-everything
accepts but never lists; the policy therefore opts server-everything in to unlisted uris
(``resources: {unlisted_uris: route}``), and the audit log must show those routings as unlisted.
The server has no network (``network: none``), so the approval classifier reads the ``test://``
uri as a resource identifier, not as a domain, and the policy allows the subscription outright.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

NPM_DIR = Path("/tmp/stockade-test-npm")  # where conftest installs server-everything

pytestmark = [pytest.mark.node, pytest.mark.gvisor, pytest.mark.slow]

WATCHED = "test://watched-resource"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[bytes], limit_s: float = 60) -> None:
    deadline = time.monotonic() + limit_s  # bounded wait for a child to listen
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"process exited early with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listened on {port} within {limit_s}s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(15)


def run_suite(node: Path, suite: Path, url: str, out: Path) -> dict[str, bool]:
    """Scenario -> passed (no check failed), from the suite's checks.json files."""
    subprocess.run(
        [str(node), str(suite), "server", "--url", url, "-o", str(out)],
        capture_output=True,
        timeout=240,
        check=False,  # nonzero whenever any scenario fails; the files say which
        cwd=out.parent,
    )
    results: dict[str, bool] = {}
    for checks in sorted(out.glob("server-*/checks.json")):
        scenario = checks.parent.name.removeprefix("server-").rsplit("-", 6)[0]
        statuses = [c.get("status") for c in json.loads(checks.read_text())]
        results[scenario] = bool(statuses) and "FAILURE" not in statuses
    assert results, f"the suite wrote no results under {out}"
    return results


@pytest.mark.guarantee("gw-conformance-through-gateway", "gw-http-unsafe-no-auth-audited")
def test_conformance_scenarios_that_pass_directly_pass_through_the_gvisor_gateway(
    tmp_path: Path, everything_js: Path, node22: Path, conformance_js: Path
) -> None:
    if shutil.which("runsc") is None or os.geteuid() != 0:
        pytest.skip("GVISOR MISSING: needs runsc and root; run scripts/bootstrap as root")
    node = shutil.which("node")
    assert node is not None
    port = free_port()
    direct = subprocess.Popen(
        [node, str(everything_js), "streamableHttp"],
        env={**os.environ, "PORT": str(port)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_listening(port, direct)
        plain = run_suite(
            node22, conformance_js, f"http://127.0.0.1:{port}/mcp", tmp_path / "direct"
        )
    finally:
        stop(direct)

    tools = ["echo", "get-sum", "get-tiny-image", "trigger-long-running-operation"]
    rules = [
        {"tool": t, "action": "allow", "tier": "low"}
        for t in [*tools, "prompts/get", "resources/read"]
    ]
    entry = everything_js.resolve().relative_to(NPM_DIR.resolve())  # code bound read-only
    policy = {
        "version": 1,
        "default": "deny",
        "servers": [
            {
                "name": "everything",
                "command": [str(Path(node).resolve()), str(entry), "stdio"],
                "tofu": True,
                "start": "eager",
                "memory_mb": 512,
                "network": "none",  # said explicitly: resource uris are then identifiers
                "resources": {"unlisted_uris": "route"},
                "tools": {"rules": rules},
            }
        ],
    }
    # A real policy's code paths must lie under its directory: write it beside node_modules.
    path = NPM_DIR / f"conformance-{os.getpid()}.yaml"
    pins = NPM_DIR / "pins"
    had_pins = pins.exists()
    path.write_text(yaml.safe_dump(policy))
    home = tmp_path / "home"
    gport = free_port()
    argv = [sys.executable, "-m", "stockade", "gateway", "--policy", str(path)]
    argv += ["--http", f"127.0.0.1:{gport}", "--unsafe-no-auth"]
    with (tmp_path / "gateway.log").open("wb") as log:
        gw = subprocess.Popen(
            argv,
            env={**os.environ, "STOCKADE_HOME": str(home)},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        try:
            wait_listening(gport, gw, limit_s=90)
            gated = run_suite(
                node22, conformance_js, f"http://127.0.0.1:{gport}/mcp", tmp_path / "gw"
            )
        finally:
            stop(gw)
            path.unlink()
            if not had_pins:
                shutil.rmtree(pins, ignore_errors=True)

    for s in sorted(set(plain) | set(gated)):
        print(f"conformance {s:32} direct={plain.get(s)!s:5} gateway={gated.get(s)}")
    print(
        f"passed directly {sum(plain.values())}/{len(plain)}, "
        f"through the gateway {sum(gated.values())}/{len(gated)}"
    )
    lost = sorted(s for s, ok in plain.items() if ok and not gated.get(s, False))
    assert not lost, f"pass directly but fail through the gateway: {lost}"
    assert sum(gated.values()) >= sum(plain.values())
    assert gated.get("dns-rebinding-protection") is True
    audit = [json.loads(line) for line in (home / "audit" / "audit.jsonl").read_text().splitlines()]
    assert any(e["type"] == "gateway.unsafe_no_auth" for e in audit)  # the unsafe mode is recorded
    unlisted = [
        e["data"]
        for e in audit
        if e["type"] == "gateway.raw_uri_routed" and e["data"].get("unlisted") is True
    ]
    if plain.get("resources-subscribe"):
        routed = {(d["uri"], d["method"], d["server"]) for d in unlisted}
        assert (WATCHED, "resources/subscribe", "everything") in routed
        decided = {
            e["data"]["decision"]
            for e in audit
            if e["type"] == "gateway.subscribe" and e["data"]["uri"] == WATCHED
        }
        assert decided == {"allow"}  # an identifier of a server without network, not a domain
