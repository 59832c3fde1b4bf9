"""Gateway latency overhead and blocked egress on /metrics, from real gateways and sandboxes."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from stockade.api import ControlPlane
from stockade.errors import SandboxError
from stockade.gateway import Gateway, GatewayConfig, PinStore, ServerSpec, SubprocessLauncher
from stockade.gateway._chain import CallContext, ToolResult, compose
from stockade.gateway._interceptors import ApprovalStep
from stockade.gateway._timing import APPROVAL, CallTimer, Timed, timed_terminal
from stockade.identity import Role
from stockade.models import Category, Decision, NetworkProfile, Runtime, SandboxSpec, ToolCall
from stockade.sandbox import find_bwrap, launch
from stockade.store import MAX_DOMAINS_PER_RUN, OTHER_DOMAIN, EgressCounter, RunStore
from stockade.testing import FakeClock, MemoryAuditSink, ScriptedApprover, StaticDecider

from ._helpers import T0, client_for, peer, record

ECHO = Path(__file__).resolve().parents[1] / "gateway" / "servers" / "sdk_echo.py"


def scrape(cp: ControlPlane) -> dict[str, Any]:
    """Parse /metrics with prometheus_client's own parser: samples by (name, labels)."""
    resp = client_for(cp, peer(Role.OPERATOR)).get("/metrics")
    assert resp.status_code == 200
    out: dict[str, Any] = {}
    for family in text_string_to_metric_families(resp.text):
        for s in family.samples:
            out[s.name, tuple(sorted(s.labels.items()))] = s.value
    return out


class Ticks:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_the_overhead_is_the_total_minus_downstream_and_approval_time() -> None:
    ticks = Ticks()

    class SlowHuman(ScriptedApprover):
        def decide(self, call: ToolCall, decision: Decision) -> Decision:
            ticks.t += 30.0  # a human thinking
            return super().decide(call, decision)

    class Gate:
        async def __call__(self, ctx: CallContext, nxt: Any) -> ToolResult:
            ticks.t += 0.004  # the gateway's own work
            ctx.decision = Decision.require_approval("r", Category.EXFILTRATION)
            return dict(await nxt(ctx))

    async def downstream(ctx: CallContext) -> ToolResult:
        ticks.t += 2.0
        return {"content": []}

    chain = compose(
        [
            CallTimer(ticks),
            Gate(),
            Timed(ApprovalStep(SlowHuman(allow=True), 60.0), APPROVAL, ticks),
        ],
        timed_terminal(downstream, ticks),
    )
    ctx = CallContext(call=ToolCall(server="s", tool="t", client="a"), exposed_name="s__t")
    asyncio.run(chain(ctx))
    assert ctx.timing["total_s"] == pytest.approx(32.004)
    assert ctx.timing["downstream_s"] == pytest.approx(2.0)
    assert ctx.timing["approval_s"] == pytest.approx(30.0)
    assert ctx.timing["overhead_s"] == pytest.approx(0.004)


def test_a_real_gateway_session_shows_up_as_an_overhead_histogram_per_server(
    cp: ControlPlane, open_store: Callable[[], RunStore], tmp_path: Path
) -> None:
    with open_store() as s:
        s.create(record("gw-echo", kind="server", server="echo"))

    def evidence(server: str, data: dict[str, Any]) -> None:
        with open_store() as s:
            s.add_evidence("gw-echo", "decision", data)

    async def go() -> None:
        gw = Gateway(
            GatewayConfig(
                servers=(ServerSpec(name="echo", command=(sys.executable, str(ECHO)), tofu=True),),
                clients=("agent",),
            ),
            pins=PinStore(tmp_path / "pins"),
            launcher=SubprocessLauncher(),
            decider=StaticDecider(allow={"echo__echo"}),
            approver=ScriptedApprover(allow=False),
            audit=MemoryAuditSink(),
            clock=FakeClock(),
            evidence=evidence,
        )
        await asyncio.wait_for(gw.start(), 30)
        try:
            for i in range(3):
                msg = {
                    "jsonrpc": "2.0",
                    "id": i,
                    "method": "tools/call",
                    "params": {"name": "echo__echo", "arguments": {"message": f"hi {i}"}},
                }
                resp = await asyncio.wait_for(gw.handle(msg, client="agent"), 30)
                assert resp is not None
                assert "Echo: hi" in str(resp["result"]), resp
        finally:
            await gw.close()

    asyncio.run(go())
    m = scrape(cp)
    srv = ("server", "echo")
    assert m["stockade_gateway_overhead_seconds_count", (srv,)] == 3
    assert m["stockade_gateway_overhead_seconds_bucket", (("le", "+Inf"), srv)] == 3
    assert m["stockade_gateway_overhead_seconds_sum", (srv,)] >= 0
    # nobody was asked: no approval wait is reported for these calls
    assert not [k for k in m if k[0].startswith("stockade_gateway_approval_wait_seconds")]
    with open_store() as s:
        timings = [e.data["timing"] for e in s.evidence("gw-echo")]
    for t in timings:
        assert 0 <= t["overhead_s"] <= t["total_s"]
        assert t["downstream_s"] > 0
        assert t["overhead_s"] + t["downstream_s"] + t["approval_s"] == pytest.approx(t["total_s"])


def test_an_approval_wait_is_reported_apart_from_the_overhead(
    cp: ControlPlane, open_store: Callable[[], RunStore]
) -> None:
    timing = {"total_s": 45.01, "downstream_s": 0.0, "approval_s": 45.0, "overhead_s": 0.01}
    with open_store() as s:
        s.create(record("gw-mail", kind="server", server="mail"))
        s.add_evidence(
            "gw-mail",
            "decision",
            {"outcome": "denied:approval", "provenance": [], "timing": timing},
        )
    m = scrape(cp)
    srv = ("server", "mail")
    assert m["stockade_gateway_approval_wait_seconds_sum", (srv,)] == pytest.approx(45.0)
    assert m["stockade_gateway_approval_wait_seconds_bucket", (("le", "30"), srv)] == 0
    assert m["stockade_gateway_approval_wait_seconds_bucket", (("le", "60"), srv)] == 1
    assert m["stockade_gateway_overhead_seconds_bucket", (("le", "0.01"), srv)] == 1
    assert m["stockade_gateway_overhead_seconds_bucket", (("le", "0.005"), srv)] == 0


def _count(counter: EgressCounter, run_id: str, target: str, kind: str = "not_allowlisted") -> None:
    counter.append("egress.blocked", {"target": target, "kind": kind}, run_id=run_id)


@pytest.mark.guarantee("cp-egress-metric-bounded")
def test_hostile_domains_and_kinds_never_become_labels_and_domains_per_run_are_capped(
    cp: ControlPlane, open_store: Callable[[], RunStore]
) -> None:
    with open_store() as s:
        s.create(record("r-evil", server="evil"))
    sink = MemoryAuditSink()
    counter = EgressCounter(sink, open_store, FakeClock())
    for i in range(MAX_DOMAINS_PER_RUN + 20):
        _count(counter, "r-evil", f"d{i}.attacker.test:443")
    _count(counter, "r-evil", 'x"}\nevil_metric 1:443', kind='x"}\nevil 1')
    _count(counter, "r-evil", "http://\u202eexample.com/")
    _count(counter, "no-such-run", "a.test:443")
    m = scrape(cp)
    reasons = {dict(k[1])["reason"] for k in m if k[0] == "stockade_egress_blocked_total"}
    assert reasons == {"not_allowlisted", "other"}
    assert m[
        "stockade_egress_blocked_total", (("reason", "not_allowlisted"), ("server", "evil"))
    ] == (MAX_DOMAINS_PER_RUN + 21)
    with open_store() as s:
        rows = s.egress_blocked()
    domains = {d for _, d, _, _ in rows}
    assert len(domains) <= MAX_DOMAINS_PER_RUN
    assert OTHER_DOMAIN in domains
    assert all("\n" not in d and '"' not in d for d in domains)
    # the event is always written; a count that cannot be stored says so in the audit log
    assert [e.type for e in sink.events][-2:] == ["egress.blocked", "egress.count_failed"]


def _bwrap_or_skip() -> None:
    if os.geteuid() != 0:
        pytest.skip("BWRAP SANDBOX UNAVAILABLE: the sandbox runner needs root")
    try:
        find_bwrap()
    except SandboxError as e:
        pytest.skip(f"BWRAP SANDBOX UNAVAILABLE: {e.what}")


FETCH = """
import urllib.request, urllib.error
for url in ("http://unlisted.test:8/", "http://127.0.0.1:9/"):
    try:
        urllib.request.urlopen(url, timeout=5)
        print("GOT", url)
    except (urllib.error.URLError, OSError) as e:
        print("blocked", url, getattr(e, "code", ""))
"""


@pytest.mark.bwrap
@pytest.mark.guarantee("cp-egress-metric-bounded")
def test_a_blocked_attempt_from_a_real_sandbox_is_counted_on_the_metrics_endpoint(
    cp: ControlPlane, open_store: Callable[[], RunStore], tmp_path: Path
) -> None:
    _bwrap_or_skip()
    run_id = "egress" + os.urandom(6).hex()
    with open_store() as s:
        s.create(record(run_id, kind="server", server="fetch"))
    state = tmp_path / "state"
    state.mkdir()
    sink = MemoryAuditSink()
    spec = SandboxSpec(
        argv=("/usr/bin/python3", "-c", FETCH),
        runtime=Runtime.NAMESPACES,
        network=NetworkProfile(mode="allowlist", domains=("allowed.test",)),
        timeout_s=20,
    )
    sb = launch(
        spec,
        state=state,
        run_id=run_id,
        audit=EgressCounter(sink, open_store, FakeClock(T0)),
        egress_resolver=lambda h: {"allowed.test": ["127.0.0.1"]}.get(h, []),
        egress_ranges=(ipaddress.ip_network("127.0.0.1/32"),),
    )
    assert sb.stdout is not None
    out = sb.stdout.read().decode(errors="replace")
    sb.wait(timeout=60)
    sb.stdout.close()
    if sb.stderr is not None:
        sb.stderr.close()
    assert "blocked http://unlisted.test:8/ 403" in out, out
    assert "blocked http://127.0.0.1:9/ 403" in out, out
    m = scrape(cp)
    key = ("stockade_egress_blocked_total", (("reason", "not_allowlisted"), ("server", "fetch")))
    assert m[key] == 2
    with open_store() as s:
        assert {(d, k) for _, d, k, _ in s.egress_blocked()} >= {
            ("unlisted.test", "not_allowlisted"),
            ("127.0.0.1", "not_allowlisted"),
        }
    assert [e.type for e in sink.events].count("egress.blocked") == 2
