"""Gates: preflight and postflight checks, secret scanning, evidence export (docs/api.md).

``preflight_checks(policy_file, inputs)`` and ``postflight_checks(run_id, inputs)`` return named
checks; ``run_checks`` runs them all into PASS/FAIL :class:`GateResult` lines. ``scan_text`` finds
secrets (detect-secrets pattern detectors, run tokens, the policy's own secret values);
``export_evidence`` writes an offline-checkable folder.
"""

from ._alerting_sink import AlertingAuditSink, alert_for
from ._alerts import Alert, AlertError, AlertHook, CommandHook, WebhookHook, make_alert
from ._audit import AuditTarget
from ._checks import Check, GateResult, run_checks
from ._evidence import export_evidence
from ._gates import GateError, GateInputs, audit_lines_of_run, postflight_checks, preflight_checks
from ._retention import ArchiveSeal, prune_archives, rotate_audit_log
from ._rollout import (
    ApplyPlan,
    DrillResult,
    apply_policy,
    drill_rollback,
    plan_apply,
    rollback_policy,
)
from ._scan import SecretFinding, scan_text
from ._versions import (
    PolicyVersion,
    install_policy,
    latest_policy_version,
    policy_history,
    previous_policy_version,
    record_policy_version,
)

__all__ = [
    "Alert",
    "AlertError",
    "AlertHook",
    "AlertingAuditSink",
    "ApplyPlan",
    "ArchiveSeal",
    "AuditTarget",
    "Check",
    "CommandHook",
    "DrillResult",
    "GateError",
    "GateInputs",
    "GateResult",
    "PolicyVersion",
    "SecretFinding",
    "WebhookHook",
    "alert_for",
    "apply_policy",
    "audit_lines_of_run",
    "drill_rollback",
    "export_evidence",
    "install_policy",
    "latest_policy_version",
    "make_alert",
    "plan_apply",
    "policy_history",
    "postflight_checks",
    "preflight_checks",
    "previous_policy_version",
    "prune_archives",
    "record_policy_version",
    "rollback_policy",
    "rotate_audit_log",
    "run_checks",
    "scan_text",
]
