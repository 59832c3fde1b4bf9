"""The preflight and postflight gates, as lists of checks (see :mod:`._checks`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from stockade.audit import CHECKPOINT_TYPE
from stockade.errors import StockadeError
from stockade.policy import load_policy
from stockade.store import RunStore

from ._audit import AuditTarget
from ._checks import Check
from ._scan import SecretFinding, scan_text
from ._versions import latest_policy_version

__all__ = ["GateError", "GateInputs", "postflight_checks", "preflight_checks"]

MAX_SCAN_BYTES = 64 * 1024 * 1024


class GateError(StockadeError):
    """A gate check failed (printed as a FAIL line; the command exits non-zero)."""


@dataclass(frozen=True)
class GateInputs:
    open_store: Callable[[], RunStore]
    audit: AuditTarget
    secret_values: tuple[str, ...] = ()
    runtimes: Mapping[str, Callable[[], str]] = field(default_factory=dict)
    scan_paths: tuple[Path, ...] = ()


def _read(path: Path) -> str:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_SCAN_BYTES + 1)
    except OSError as e:
        raise GateError(f"cannot read {path} to scan it: {e.strerror}", "check the path") from e
    if len(data) > MAX_SCAN_BYTES:
        raise GateError(f"{path} is over {MAX_SCAN_BYTES} bytes", "rotate or archive it first")
    return data.decode("utf-8", errors="replace")


def _no_findings(findings: Sequence[SecretFinding], scanned: str) -> str:
    if findings:
        shown = "; ".join(str(f) for f in findings[:10])
        more = f" (and {len(findings) - 10} more)" if len(findings) > 10 else ""
        raise GateError(
            f"{len(findings)} secret finding(s): {shown}{more}",
            "rotate the exposed secrets, then find out how they reached the log",
        )
    return f"no secrets in {scanned}"


def _audit_intact(audit: AuditTarget, *, sealed: bool) -> Callable[[], str]:
    def check() -> str:
        report = audit.verify()
        if not report.ok or report.problem is not None:
            raise GateError(
                f"audit log {audit.log} fails verification at {report.problem}",
                "treat the log as tampered with from that line on",
            )
        if sealed and report.unsealed:
            raise GateError(
                f"{report.unsealed} audit event(s) after the last signed checkpoint",
                f"seal it: stockade audit head --seal {audit.log}",
            )
        return f"{report.events} events, {report.checkpoints} checkpoints"

    return check


def preflight_checks(policy_file: Path, inputs: GateInputs) -> list[Check]:
    def policy_valid() -> str:
        return f"valid, effective hash {load_policy(policy_file).effective_hash}"

    def policy_recorded() -> str:
        current = load_policy(policy_file).effective_hash
        with inputs.open_store() as store:
            recorded = latest_policy_version(store)
        if recorded is None:
            raise GateError(
                "no policy version is recorded", "record it: stockade preflight --record-policy"
            )
        if recorded.hash != current:
            raise GateError(
                f"policy hash is {current}, the recorded one is {recorded.hash} "
                f"(recorded {recorded.applied_at} by {recorded.applied_by})",
                "review the change, then record it: stockade preflight --record-policy",
            )
        return f"matches version {recorded.id}"

    def secrets_in_logs() -> str:
        findings: list[SecretFinding] = []
        paths = (inputs.audit.log, *inputs.scan_paths)
        for p in paths:
            findings += scan_text(str(p), _read(p), inputs.secret_values)
        return _no_findings(findings, ", ".join(str(p) for p in paths))

    checks: list[Check] = [
        ("policy valid", policy_valid),
        ("policy hash recorded", policy_recorded),
    ]
    checks += [(f"runtime {name}", fn) for name, fn in sorted(inputs.runtimes.items())]
    checks += [
        ("audit log verifies", _audit_intact(inputs.audit, sealed=False)),
        ("no secrets in logs", secrets_in_logs),
    ]
    return checks


def audit_lines_of_run(log: Path, run_id: str) -> list[str]:
    """The audit log's lines for ``run_id`` plus every checkpoint line (kept for the excerpt)."""
    out: list[str] = []
    for line in _read(log).splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and (
            obj.get("run_id") == run_id or obj.get("type") == CHECKPOINT_TYPE
        ):
            out.append(line)
    return out


def postflight_checks(run_id: str, inputs: GateInputs) -> list[Check]:
    def run_known() -> str:
        with inputs.open_store() as store:
            run = store.get(run_id)
        return f"status {run.status.value}, end reason {run.end_reason or '-'}"

    def trace_clean() -> str:
        with inputs.open_store() as store:
            text = json.dumps(store.trace(run_id).model_dump(mode="json"), indent=1)
        return _no_findings(scan_text(f"trace {run_id}", text, inputs.secret_values), "the trace")

    def audit_clean() -> str:
        text = "\n".join(audit_lines_of_run(inputs.audit.log, run_id))
        findings = scan_text(f"{inputs.audit.log} (run {run_id})", text, inputs.secret_values)
        return _no_findings(findings, "the run's audit events")

    return [
        ("run recorded", run_known),
        ("audit chain intact and sealed", _audit_intact(inputs.audit, sealed=True)),
        ("secret rescan of the trace", trace_clean),
        ("secret rescan of the audit events", audit_clean),
    ]
