"""``stockade demo``: the main job on the embedded default, end to end, with its own checks.

Each act prints what it did and compares the outcome with what stockade must do; the command exits
1 when any expectation fails, so the demo doubles as a smoke test of the whole wiring.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import click

from stockade.admission import StockadeRules, evaluate, load_documents
from stockade.audit import PUBLIC_KEY_FILE as AUDIT_PUBKEY
from stockade.audit import AuditLog, load_public_key, verify_file
from stockade.errors import StockadeError, UsageError
from stockade.models import Decision, ToolCall
from stockade.policy import DecisionContext, check_policy, decide, load_policy
from stockade.textsafe import safe_text

from ._demo_gateway import GatewayAct

__all__ = ["Demo", "demo", "find_examples"]


AGENT = "local-agent"  # the client identity examples/policies/everything.yaml grants


def find_examples(explicit: Path | None) -> Path:
    """The examples directory: given, or the one beside this source checkout."""
    candidates = [explicit] if explicit else [Path(__file__).resolve().parents[3] / "examples"]
    for c in candidates:
        if c is not None and (c / "policies").is_dir() and (c / "workloads").is_dir():
            return c
    raise UsageError(
        "cannot find stockade's examples directory (with policies/ and workloads/)",
        "run the demo from a source checkout (./scripts/demo) or pass --examples DIR",
    )


@dataclass
class Demo:
    """Runs the acts, counting expectations met and missed."""

    home: Path
    examples: Path
    echo: Callable[[str], None] = click.echo
    failures: list[str] = field(default_factory=list)
    checks: int = 0

    def expect(self, ok: bool, what: str) -> None:
        self.checks += 1
        mark = "ok  " if ok else "FAIL"
        self.echo(f"  [{mark}] {what}")
        if not ok:
            self.failures.append(what)

    def heading(self, title: str) -> None:
        self.echo(f"\n== {title}")

    # -- act 1 -------------------------------------------------------------------------------
    def policies(self, audit: AuditLog) -> None:
        self.heading("1. policy check: the example policies")
        pdir = self.examples / "policies"
        for f in sorted(pdir.glob("*.yaml")):
            r = check_policy(f)
            ver = "v0 (normalised to v1)" if r.source_version == 0 else "v1"
            h = r.policy.effective_hash if r.policy else "-"
            self.expect(r.ok, f"{f.name}: valid, {ver}, effective hash {h[:23]}…")
            for w in r.warnings:
                self.echo(f"        warning: {safe_text(str(w), single_line=True)}")
            audit.append("policy.check", {"file": f.name, "ok": r.ok, "hash": h})
        for f in sorted((pdir / "invalid").glob("*.yaml")):
            r = check_policy(f)
            first = safe_text(str(r.errors[0]), single_line=True, limit=110) if r.errors else ""
            self.expect(not r.ok, f"invalid/{f.name}: rejected: {first}")
            audit.append("policy.check", {"file": f"invalid/{f.name}", "ok": r.ok})

    # -- act 2 -------------------------------------------------------------------------------
    def admission(self, audit: AuditLog) -> None:
        self.heading("2. stockade admit --level stockade: the example workloads")
        rules = StockadeRules(
            allowed_registries=("ghcr.io/acme/*",), granted_secrets=frozenset({"api-token"})
        )
        expected_allow = {"hardened-gvisor-pod.yaml", "hardened-job.yaml", "bundle.yaml"}
        for f in sorted((self.examples / "workloads").glob("*.yaml")):
            if f.name == "expected.yaml":
                continue
            docs = load_documents(f.read_text(encoding="utf-8"), f.name)
            results = [evaluate(d.obj, "stockade", rules) for d in docs]
            denied = sorted({v.check for r in results for v in r.violations})
            verdict = "deny" if denied else "allow"
            want = "allow" if f.name in expected_allow else "deny"
            detail = f" ({', '.join(denied[:4])}{', …' if len(denied) > 4 else ''})"
            self.expect(verdict == want, f"{f.name}: {verdict}{detail if denied else ''}")
            audit.append("admission", {"file": f.name, "verdict": verdict, "checks": denied})

    # -- act 3 -------------------------------------------------------------------------------
    def decisions(self, audit: AuditLog) -> None:
        self.heading("3. policy decisions on tool calls (pure engine, deny by default)")
        policy = load_policy(self.examples / "policies" / "everything.yaml")

        def mk(tool: str, server: str = "everything", **args: object) -> ToolCall:
            return ToolCall(client=AGENT, server=server, tool=tool, arguments=args)

        cases: list[tuple[ToolCall, str]] = [
            (mk("echo", message="hi"), "allow"),
            (mk("get-env"), "deny"),
            (mk("not-a-tool"), "deny"),
            (mk("echo", server="unknown-server", message="x"), "deny"),
            (mk("echo", message=7), "deny"),
            (mk("get-sum", a=1, b=2), "allow"),
        ]
        ctx = DecisionContext(now=1_000.0)
        for call, want in cases:
            d, ctx = decide(policy, call, ctx)
            self.expect(d.kind == want, f"{_show_call(call)} -> {_show_decision(d)}")
            audit.append(
                "decision",
                {"server": call.server, "tool": call.tool, "kind": d.kind, "reason": d.reason},
            )
        # rate limit: echo allows a burst of 10 at once, then denies until tokens refill
        kinds = []
        for _ in range(12):
            d, ctx = decide(policy, cases[0][0], ctx)
            kinds.append(d.kind)
        self.expect(
            kinds.count("deny") >= 1 and kinds[0] == "allow",
            f"burst of 12 echo calls at one instant: {kinds.count('allow')} allowed, "
            f"{kinds.count('deny')} rate-limited",
        )

    # -- act 4 -------------------------------------------------------------------------------
    def verify_audit(self, log_path: Path, key_dir: Path) -> None:
        self.heading("5. the audit log: verify with the out-of-band public key, then tamper")
        pub = load_public_key(key_dir / AUDIT_PUBKEY)
        report = verify_file(log_path, public_key=pub)
        self.expect(
            report.ok,
            f"{log_path.name}: {report.events} events, {report.checkpoints} signed checkpoints, "
            f"intact",
        )
        head = report.head
        tampered = log_path.with_name("tampered.jsonl")
        lines = log_path.read_bytes().splitlines(keepends=True)
        # the attack: rewrite a recorded denial as an allow, to hide it
        mid = next(i for i, ln in enumerate(lines) if b'"verdict":"deny"' in ln)
        lines[mid] = lines[mid].replace(b'"verdict":"deny"', b'"verdict":"allow"', 1)
        tampered.write_bytes(b"".join(lines))
        bad = verify_file(tampered, public_key=pub)
        why = safe_text(str(bad.problem), single_line=True, limit=120) if bad.problem else ""
        self.expect(not bad.ok, f"copy with a denial rewritten as allow: {why}")
        cut = log_path.with_name("truncated.jsonl")
        cut.write_bytes(b"".join(log_path.read_bytes().splitlines(keepends=True)[:-3]))
        short = verify_file(cut, public_key=pub, expect_head=head)
        self.expect(
            not short.ok, "tail deleted together with its last checkpoint: detected by the head"
        )

    def summary(self) -> int:
        self.heading("summary")
        if self.failures:
            self.echo(f"  {len(self.failures)} of {self.checks} expectations FAILED:")
            for f in self.failures:
                self.echo(f"   - {f}")
            return 1
        self.echo(f"  all {self.checks} expectations met; state in {self.home}")
        return 0


def _show_call(call: ToolCall) -> str:
    args = safe_text(str(call.arguments), single_line=True, limit=40)
    return f"{safe_text(call.server)}.{safe_text(call.tool)}({args})"


def _show_decision(d: Decision) -> str:
    reason = safe_text(d.reason, single_line=True, limit=90)
    return d.kind + (f": {reason}" if reason else "")


@click.command(name="demo")
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".stockade-demo"),
    show_default=True,
    help="Scratch STOCKADE_HOME for the demo (wiped at start).",
)
@click.option(
    "--examples",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="The examples directory (default: the one in this source checkout).",
)
@click.option(
    "--no-gateway",
    "gateway",
    flag_value=False,
    default=True,
    help="Skip the gateway act (which needs root, runsc and npm).",
)
def demo(home: Path, examples: Path | None, gateway: bool) -> int:
    """Run the end-to-end demo on the embedded default and check every outcome."""
    ex = find_examples(examples)
    home = home.resolve()
    if home.exists():
        if not (home / ".stockade-demo").exists():
            raise UsageError(
                f"{home} exists and is not a stockade demo directory",
                "pass --home with a new or previous demo directory",
            )
        for child in home.iterdir():  # keep cache/ (the npm install of server-everything)
            if child.name not in ("cache", ".stockade-demo"):
                shutil.rmtree(
                    child
                ) if child.is_dir() and not child.is_symlink() else child.unlink()
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    (home / ".stockade-demo").touch()
    os.environ["STOCKADE_HOME"] = str(home)
    d = Demo(home=home, examples=ex)
    log_path, key_dir = home / "audit" / "audit.jsonl", home / "keys"
    click.echo(f"stockade demo: STOCKADE_HOME={home}")
    with AuditLog.open(log_path, key_dir, checkpoint_every=8) as audit:
        audit.append("demo.start", {"examples": str(ex)})
        try:
            d.policies(audit)
            d.admission(audit)
            d.decisions(audit)
        except StockadeError as e:
            d.expect(False, f"unexpected error: {safe_text(e.message, single_line=True)}")
    if gateway:
        d.heading("4. stockade gateway: real MCP servers in gVisor, driven by an MCP client")
        try:
            GatewayAct(d.expect, d.echo, home).run(ex)
        except StockadeError as e:
            d.expect(False, f"gateway act failed: {safe_text(e.message, single_line=True)}")
    d.verify_audit(log_path, key_dir)
    return d.summary()
