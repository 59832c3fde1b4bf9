"""Veto controls: human approval for sensitive tool calls.

- :mod:`._binding`, :mod:`._bind`: a request is bound to the exact call (digest over server, image
  digest, tool, canonical arguments, policy hash, session); re-checked and consumed before dispatch;
- :mod:`._machine`: the pure state machine (transition table; illegal events raise);
- :mod:`._classify`: which sensitive categories a call falls in (unknown means sensitive);
- :mod:`._store`: persistence in the run store's SQLite file, and the kill switch;
- :mod:`._approver`: :class:`StoreApprover`, the gateway's ``Approver``;
- :mod:`._web`, :mod:`._page`, :mod:`._auth`, :mod:`._serve`: the approval web page;
- :mod:`._elicit`, :mod:`._elicit_channel`, :mod:`._mrtr`, :mod:`._rounds`: MCP elicitation (both
  protocol eras).

See docs/approvals.md.
"""

from ._approver import INPUT_REQUIRED_RULE, StoreApprover, Waiter
from ._auth import OPERATOR_SECRET_PREFIX, Session, Sessions, operator_secret_name
from ._bind import new_request, recheck
from ._binding import CallBinding, canonical_arguments
from ._classify import Classification, ClassifierRules, classify, rules_from_policy
from ._classifying import ClassifyingDecider
from ._elicit import (
    ElicitMode,
    choose_mode,
    client_modes,
    form_answer,
    form_request,
    url_request,
)
from ._elicit_channel import Connection, ElicitationChannel, ElicitationFailed
from ._errors import (
    ApprovalNotFound,
    BindingMismatch,
    IllegalTransition,
    InterceptError,
    LoginRefused,
)
from ._escalate import EscalationRules, escalate, escalation
from ._escalating import EscalatingDecider
from ._intercept import MAX_PAYLOAD, after, before, error_result, parse_before
from ._kill import KillSwitch
from ._machine import (
    OPERATOR_ONLY,
    TERMINAL,
    TRANSITIONS,
    ApprovalRequest,
    AuditRecord,
    Channel,
    Event,
    EventKind,
    State,
    apply,
    expire_if_due,
)
from ._metrics import CategoryMetrics, metrics
from ._mrtr import INPUT_KEY, RequestStateCodec, Sealed, input_required, retry_event
from ._remember import MAX_REMEMBER_S, Remembered, covering, remember_from, url_hosts
from ._rounds import Round, current_round, round_from, serving_round
from ._serve import PageServer, loopback_socket
from ._store import ApprovalStore
from ._veto import VetoDecider, default_approver, watch_kill
from ._web import CSP, approval_app
from ._wiring import check_page_url, elicitation_channel, policy_file_hash, store_approver

__all__ = [
    "CSP",
    "INPUT_KEY",
    "INPUT_REQUIRED_RULE",
    "MAX_PAYLOAD",
    "MAX_REMEMBER_S",
    "OPERATOR_ONLY",
    "OPERATOR_SECRET_PREFIX",
    "TERMINAL",
    "TRANSITIONS",
    "ApprovalNotFound",
    "ApprovalRequest",
    "ApprovalStore",
    "AuditRecord",
    "BindingMismatch",
    "CallBinding",
    "CategoryMetrics",
    "Channel",
    "Classification",
    "ClassifierRules",
    "ClassifyingDecider",
    "Connection",
    "ElicitMode",
    "ElicitationChannel",
    "ElicitationFailed",
    "EscalatingDecider",
    "EscalationRules",
    "Event",
    "EventKind",
    "IllegalTransition",
    "InterceptError",
    "KillSwitch",
    "LoginRefused",
    "PageServer",
    "Remembered",
    "RequestStateCodec",
    "Round",
    "Sealed",
    "Session",
    "Sessions",
    "State",
    "StoreApprover",
    "VetoDecider",
    "Waiter",
    "after",
    "apply",
    "approval_app",
    "before",
    "canonical_arguments",
    "check_page_url",
    "choose_mode",
    "classify",
    "client_modes",
    "covering",
    "current_round",
    "default_approver",
    "elicitation_channel",
    "error_result",
    "escalate",
    "escalation",
    "expire_if_due",
    "form_answer",
    "form_request",
    "input_required",
    "loopback_socket",
    "metrics",
    "new_request",
    "operator_secret_name",
    "parse_before",
    "policy_file_hash",
    "recheck",
    "remember_from",
    "retry_event",
    "round_from",
    "rules_from_policy",
    "serving_round",
    "store_approver",
    "url_hosts",
    "url_request",
    "watch_kill",
]
