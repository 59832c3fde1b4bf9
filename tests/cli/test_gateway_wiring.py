"""What ``stockade gateway`` wraps around its launchers: OPA's ``secret_access`` before a server
with secrets is launched (warm pool or not), and the blocked-egress counter on their sink.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from _gwclient import gateway_client, recording_server, stockade_cli, tool_names
from stockade.approvals import ApprovalStore
from stockade.audit import AuditLog
from stockade.cli._gateway import KillGate, counted_sink
from stockade.gateway import DownstreamError, ServerSpec
from stockade.models import RunRecord, RunStatus
from stockade.store import RunStore
from stockade.testing import FakeClock

pytestmark = pytest.mark.slow

REGO = """\
package stockade
import rego.v1

secret_access.decision := {"result": "allow", "reason": "the reader key"} if {
    input.extra.secret == "reader_key"  # pragma: allowlist secret
} else := {
    "result": "deny",
    "reason": sprintf("secret %s is not for %s", [input.extra.secret, input.server]),
}
"""

POLICY = """\
version: 1
default: deny
servers:
  - name: mail
    command: ["/usr/bin/python3", "srv/mail.py", "outbox"]
    warm_pool: 1
    secrets: [smtp_password]
    tools:
      rules:
        - tool: send
          action: allow
          tier: low
opa:
  mode: regopy
  modules: [rego/authz.rego]
  delegate: [secret_access]
"""


def _events(home: Path, kind: str) -> list[dict[str, Any]]:
    lines = (home / "audit" / "audit.jsonl").read_text().splitlines()
    return [e["data"] for e in map(json.loads, lines) if e.get("type") == kind]


@pytest.mark.guarantee("cp-opa-secret-access")
def test_a_warm_pool_server_whose_secret_opa_refuses_is_never_launched_nor_pooled(
    tmp_path: Path,
) -> None:
    (tmp_path / "rego").mkdir()
    (tmp_path / "rego" / "authz.rego").write_text(REGO)
    (tmp_path / "srv").mkdir()
    tool = {"name": "send", "description": "send", "inputSchema": {"type": "object"}}
    (tmp_path / "srv" / "mail.py").write_text(
        recording_server("mail", [tool], record="p", reply="'sent'", on_start="'started'")
    )
    (tmp_path / "outbox").mkdir()
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    home = tmp_path / "home"
    (home / "secrets").mkdir(parents=True, mode=0o700)

    async def listed() -> list[str]:
        async with gateway_client(tmp_path, policy) as client:
            return await tool_names(client)

    assert "mail__send" not in asyncio.run(asyncio.wait_for(listed(), 120))
    asked = [(e["question"], e["server"], e["result"]) for e in _events(home, "opa_decision")]
    assert ("secret_access", "mail", "deny") in asked
    assert not (tmp_path / "outbox" / "received.jsonl").exists()  # the server never started
    with RunStore.open(home / "runs.db") as store:
        assert store.list() == []  # no sandbox, pooled or cold, was ever booted for it
    assert _events(home, "sandbox.launched") == []
    started = stockade_cli(tmp_path, "gateway", "--policy", str(policy), "--stdio")  # EOF: ends
    assert "warm_pool of server mail ignored: it is granted secrets" in started.stderr


@pytest.mark.guarantee("cp-egress-metric-bounded")
def test_the_gateway_sink_counts_blocked_egress_of_its_runs_in_the_store(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    clock = FakeClock()
    with RunStore.open(db) as store:
        store.create(
            RunRecord(
                run_id="gw-fetch", workload="fetch", kind="server", server="fetch",
                status=RunStatus.RUNNING, created_at=clock.now(),
            )
        )  # fmt: skip
    with AuditLog.open(tmp_path / "audit.jsonl", tmp_path / "keys") as log:
        sink = counted_sink(log, db, clock)
        sink.add_secrets(["hunter2-secret-value"])  # the launchers' extras still reach the log
        sink.append("gateway.start", {"servers": ["fetch"]})
        sink.append(
            "egress.blocked", {"target": "evil.test:443", "kind": "not_allowlisted"},
            run_id="gw-fetch",
        )  # fmt: skip
        sink.append("egress.blocked", {"target": "http://evil.test/x"}, run_id="gw-fetch")
    with RunStore.open(db) as store:
        assert sorted(store.egress_blocked()) == [
            ("fetch", "evil.test", "not_allowlisted", 1),
            ("fetch", "evil.test", "other", 1),
        ]
    lines = (tmp_path / "audit.jsonl").read_text().splitlines()
    assert [json.loads(x)["type"] for x in lines].count("egress.blocked") == 2


@pytest.mark.guarantee("apr-kill-lift-revives")
def test_no_server_is_launched_while_the_kill_switch_is_engaged(tmp_path: Path) -> None:
    launched: list[str] = []

    class Recording:
        def __init__(self) -> None:
            self.run_ids: dict[str, str] = {}

        async def launch(self, server: ServerSpec) -> Any:
            launched.append(server.name)
            return "started"

    store = ApprovalStore(tmp_path / "runs.db")
    gate = KillGate(Recording(), store)
    spec = ServerSpec(name="notes", command=("/bin/cat",))
    clock = FakeClock()
    assert asyncio.run(gate.launch(spec)) == "started"
    store.set_kill(engaged=True, by="ops", reason="incident 42", now=clock.now())
    with pytest.raises(DownstreamError, match=r"kill switch is engaged by ops \(incident 42\)"):
        asyncio.run(gate.launch(spec))  # a revival, a lazy first start, a crash restart
    store.set_kill(engaged=False, by="ops", reason="resolved", now=clock.now())
    assert asyncio.run(gate.launch(spec)) == "started"
    assert launched == ["notes", "notes"]
    assert gate.run_ids == {}  # the launcher's extras still reach the gateway
