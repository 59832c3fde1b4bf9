"""The delegated questions other than tool_call, asked where they are decided, in real Rego."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stockade.gateway import Gateway, GatewayConfig, PinStore, ServerSpec, SubprocessLauncher
from stockade.gateway._config import ServerSandbox
from stockade.gateway._opa_step import OpaDecider, OpaLaunchGate, opa_decider_for
from stockade.models import SandboxSpec, ToolCall
from stockade.opa import (
    QUESTIONS,
    OpaDelegate,
    OpaDenied,
    Questions,
    RegoEvaluator,
    authorise_run,
)
from stockade.policy import load_policy
from stockade.store import RunStore
from stockade.testing import FakeClock, MemoryAuditSink, ScriptedApprover, StaticDecider

from ._fakes import erroring, unreachable

ECHO = Path(__file__).resolve().parents[1] / "gateway" / "servers" / "sdk_echo.py"

REGO = """\
package stockade
import rego.v1

server_access.decision := {"result": "allow", "reason": "alice may use echo"} if {
    input.client == "alice"
    input.server == "echo"
} else := {"result": "deny", "reason": "only alice may use echo"}

secret_access.decision := {"result": "allow", "reason": "the reader key"} if {
    input.extra.secret == "reader_key"  # pragma: allowlist secret
} else := {
    "result": "deny",
    "reason": sprintf("secret %s is not for %s", [input.extra.secret, input.server]),
}

task.decision := {"result": "allow", "reason": "echo jobs only"} if {
    input.extra.argv[0] == "/bin/echo"
} else := {"result": "deny", "reason": "only /bin/echo may run"}

delegation.decision := {"result": "allow", "reason": "ok"}

data_access.decision := {"result": "allow", "reason": "ok"}
"""

BROKEN = {
    "malformed": 'package stockade\n\nserver_access.decision := {"result": "maybe"}\n',
    "undefined": "package stockade\n\nx := 1\n",
}


def _questions(rego: str = REGO, delegated: tuple[str, ...] = QUESTIONS, **kw: Any) -> Questions:
    return Questions(OpaDelegate(RegoEvaluator({"authz.rego": rego})), delegated, **kw)


@pytest.mark.guarantee("cp-opa-questions-fail-closed")
@pytest.mark.parametrize("question", QUESTIONS)
@pytest.mark.parametrize("failure", ["unreachable", "erroring", "malformed", "undefined"])
def test_every_question_denies_when_opa_is_unavailable_or_erroring(
    question: str, failure: str
) -> None:
    if failure == "unreachable":
        q = Questions(OpaDelegate(unreachable()), QUESTIONS)
    elif failure == "erroring":
        q = Questions(OpaDelegate(erroring()), QUESTIONS)
    else:
        q = _questions(BROKEN[failure].replace("server_access", question))
    d = q.ask(question, client="alice", server="echo")  # type: ignore[arg-type]
    assert d.kind == "deny"
    assert d.rule == f"opa:stockade.{question}.decision"
    assert d.reason
    with pytest.raises(OpaDenied):
        q.require(question, what="x", client="alice", server="echo")  # type: ignore[arg-type]


def test_each_answer_carries_its_reason_and_is_audited_with_its_question() -> None:
    sink = MemoryAuditSink()
    q = _questions(audit=sink, policy_hash="sha256:" + "c" * 64)
    d = q.ask("secret_access", client="gateway", server="mail", extra={"secret": "smtp"})
    assert (d.kind, d.reason) == ("deny", "secret smtp is not for mail")
    assert q.ask("delegation", client="a", server="b").kind == "allow"
    events = [e.data for e in sink.events]
    assert events[0] == {
        "question": "secret_access",
        "client": "gateway",
        "server": "mail",
        "tool": "",
        "result": "deny",
        "reason": "secret smtp is not for mail",
        "rule": "opa:stockade.secret_access.decision",
        "secret": "smtp",  # pragma: allowlist secret
    }
    assert events[1]["question"] == "delegation"


def test_a_question_not_delegated_is_not_asked() -> None:
    q = Questions(OpaDelegate(unreachable()), ("tool_call",))
    d = q.ask("task", client="alice")
    assert (d.kind, d.rule) == ("allow", "builtin")


# -- server_access in the gateway --------------------------------------------------------------


def _access_decider(sink: MemoryAuditSink, evaluator: Any = None) -> OpaDecider:
    ev = evaluator or RegoEvaluator({"authz.rego": REGO})
    questions = Questions(OpaDelegate(ev), ("server_access",), audit=sink)
    return OpaDecider(
        StaticDecider(allow={"echo__echo"}),
        OpaDelegate(ev),
        audit=sink,
        questions=questions,
        tool_call=False,
    )


def _gateway(tmp_path: Path, decider: Any, launcher: Any, spec: ServerSpec) -> Gateway:
    return Gateway(
        GatewayConfig(servers=(spec,), clients=("alice", "mallory")),
        pins=PinStore(tmp_path / "pins"),
        launcher=launcher,
        decider=decider,
        approver=ScriptedApprover(allow=False),
        audit=MemoryAuditSink(),
        clock=FakeClock(),
    )


async def _list(gw: Gateway, client: str) -> list[str]:
    resp = await gw.handle({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, client=client)
    assert resp is not None
    return [t["name"] for t in resp["result"]["tools"]]


async def _call(gw: Gateway, client: str) -> dict[str, Any]:
    msg = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "echo__echo", "arguments": {"message": "hi"}},
    }
    resp = await asyncio.wait_for(gw.handle(msg, client=client), 30)
    assert resp is not None
    return dict(resp["result"])


ECHO_SPEC = ServerSpec(name="echo", command=(sys.executable, str(ECHO)), tofu=True)


@pytest.mark.guarantee("cp-opa-server-access")
def test_server_access_denied_hides_the_servers_tools_and_denies_its_calls(
    tmp_path: Path,
) -> None:
    sink = MemoryAuditSink()

    async def go() -> tuple[list[str], list[str], dict[str, Any], dict[str, Any]]:
        gw = _gateway(tmp_path, _access_decider(sink), SubprocessLauncher(), ECHO_SPEC)
        await asyncio.wait_for(gw.start(), 30)
        try:
            return (
                await _list(gw, "alice"),
                await _list(gw, "mallory"),
                await _call(gw, "alice"),
                await _call(gw, "mallory"),
            )
        finally:
            await gw.close()

    alice_tools, mallory_tools, alice, mallory = asyncio.run(go())
    assert "echo__echo" in alice_tools
    assert "echo__echo" not in mallory_tools
    assert "Echo: hi" in json.dumps(alice)
    assert mallory["isError"] is True
    assert "only alice may use echo" in json.dumps(mallory)
    calls = [e.data for e in sink.events if e.type == "opa_decision"]
    # calls are audited with their question; listings (probes) are not
    assert [(c["question"], c["client"], c["result"]) for c in calls] == [
        ("server_access", "alice", "allow"),
        ("server_access", "mallory", "deny"),
    ]


@pytest.mark.guarantee("cp-opa-server-access")
@pytest.mark.guarantee("cp-opa-questions-fail-closed")
def test_server_access_with_opa_down_lists_nothing_and_denies_every_call() -> None:
    d = _access_decider(MemoryAuditSink(), unreachable())
    assert d.listable("alice", "echo", "echo") is False
    from stockade.gateway import DecisionContext

    decision = d(
        ToolCall(server="echo", tool="echo", client="alice"),
        DecisionContext(tainted=False, exposed_name="echo__echo"),
    )
    assert decision.kind == "deny"
    assert "OPA could not decide" in decision.reason


def test_a_policy_delegating_server_access_only_gets_an_opa_decider(tmp_path: Path) -> None:
    policy = _policy(tmp_path, delegate="[server_access]")
    inner = StaticDecider(allow={"mail__echo"})
    d = opa_decider_for(policy, inner)
    assert isinstance(d, OpaDecider)
    from stockade.gateway import DecisionContext

    ctx = DecisionContext(tainted=False, exposed_name="mail__echo")
    # the Rego grants echo to alice only; the mail server is nobody's
    assert d(ToolCall(server="mail", tool="echo", client="alice"), ctx).kind == "deny"


# -- secret_access before a server's sandbox is launched -----------------------------------------


@pytest.mark.guarantee("cp-opa-secret-access")
def test_a_refused_secret_keeps_the_server_from_starting(tmp_path: Path) -> None:
    sink = MemoryAuditSink()
    launched: list[str] = []

    class Recording(SubprocessLauncher):
        async def launch(self, server: ServerSpec) -> Any:
            launched.append(server.name)
            return await super().launch(server)

    def gate() -> OpaLaunchGate:
        return OpaLaunchGate(Recording(), _questions(delegated=("secret_access",), audit=sink))

    async def tools(spec: ServerSpec) -> list[str]:
        gw = _gateway(tmp_path / spec.name, StaticDecider(allow={"echo__echo"}), gate(), spec)
        await asyncio.wait_for(gw.start(), 30)
        try:
            return await _list(gw, "alice")
        finally:
            await gw.close()

    refused = ECHO_SPEC.model_copy(update={"sandbox": ServerSandbox(secrets=("smtp_password",))})
    granted = ECHO_SPEC.model_copy(update={"sandbox": ServerSandbox(secrets=("reader_key",))})
    assert "echo__echo" not in asyncio.run(tools(refused))
    assert launched == []
    assert "echo__echo" in asyncio.run(tools(granted))
    assert launched == ["echo"]
    asked = [(e.data["secret"], e.data["result"]) for e in sink.events if e.type == "opa_decision"]
    assert ("smtp_password", "deny") in asked
    assert ("reader_key", "allow") in asked


# -- task and secret_access in stockade run --------------------------------------------------------


def test_authorise_run_asks_task_then_each_secret() -> None:
    sink = MemoryAuditSink()
    q = _questions(delegated=("task", "secret_access"), audit=sink)
    spec = SandboxSpec(argv=("/bin/echo", "hi"), secrets=("reader_key",))
    authorise_run(q, client="alice", server="job", spec=spec, workload="echo hi", kind="job")
    assert [e.data["question"] for e in sink.events] == ["task", "secret_access"]
    bad = SandboxSpec(argv=("/bin/sh", "-c", "id"))
    with pytest.raises(OpaDenied, match="only /bin/echo may run"):
        authorise_run(q, client="alice", server="", spec=bad, workload="sh", kind="job")
    secret = SandboxSpec(argv=("/bin/echo",), secrets=("reader_key", "root_token"))
    with pytest.raises(OpaDenied, match="secret root_token is not for job"):
        authorise_run(q, client="alice", server="job", spec=secret, workload="echo", kind="job")


POLICY = """\
version: 1
default: deny
servers:
  - name: mail
    command: ["/usr/bin/python3", "srv/server.py"]
    tools:
      rules:
        - tool: echo
          action: allow
          tier: low
  - name: job
    kind: plugin
  - name: runner
    command: {command}
    runtime: namespaces
    secrets: {secrets}
opa:
  mode: regopy
  modules: [rego/authz.rego]
  delegate: {delegate}
"""


def _policy(
    tmp_path: Path,
    *,
    delegate: str = "[task, secret_access]",
    command: str = '["/bin/echo", "hello from the job"]',
    secrets: str = "[]",
) -> Any:
    (tmp_path / "rego").mkdir(exist_ok=True)
    (tmp_path / "rego" / "authz.rego").write_text(REGO)
    (tmp_path / "srv").mkdir(exist_ok=True)
    (tmp_path / "srv" / "server.py").write_text("")
    text = POLICY.format(delegate=delegate, command=command, secrets=secrets)
    (tmp_path / "policy.yaml").write_text(text)
    return load_policy(tmp_path / "policy.yaml")


def _stockade(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "STOCKADE_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "stockade", *args],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip


def _opa_events(home: Path) -> list[dict[str, Any]]:
    lines = (home / "audit" / "audit.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    return [e["data"] for e in events if e.get("type") == "opa_decision"]


@pytest.mark.guarantee("cp-opa-task")
@pytest.mark.parametrize(
    ("command", "secrets", "why"),
    [
        ('["/bin/sh", "-c", "id"]', "[]", "only /bin/echo may run"),
        ('["/bin/echo", "hi"]', "[root_token]", "secret root_token is not for runner"),
    ],
)
def test_stockade_run_refuses_a_task_or_secret_opa_refuses_and_records_the_refusal(
    tmp_path: Path, command: str, secrets: str, why: str
) -> None:
    _policy(tmp_path, command=command, secrets=secrets)
    home = tmp_path / "home"
    r = _stockade(home, "run", "--policy", str(tmp_path / "policy.yaml"), "--server", "runner")
    assert r.returncode != 0
    assert why in r.stderr
    with RunStore.open(home / "runs.db") as store:
        (run,) = store.list()
        assert run.status.value == "refused"
        assert run.server == "runner"
        assert [e.kind for e in store.evidence(run.run_id)] == ["sandbox.refused"]
    assert any(e["result"] == "deny" and e["reason"] == why for e in _opa_events(home))


@pytest.mark.bwrap
@pytest.mark.guarantee("cp-opa-task")
def test_stockade_run_launches_a_task_opa_allows(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("RUNNER TESTS NEED ROOT (cgroups)")
    _policy(tmp_path)
    home = tmp_path / "home"
    r = _stockade(home, "run", "--policy", str(tmp_path / "policy.yaml"), "--server", "runner")
    assert r.returncode == 0, r.stderr
    assert "hello from the job" in r.stdout
    events = _opa_events(home)
    assert [(e["question"], e["result"]) for e in events] == [("task", "allow")]
