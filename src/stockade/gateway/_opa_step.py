"""OPA as a second opinion after the built-in decision (docs/policy.md, "OPA").

:class:`OpaDecider` wraps the gateway's :class:`PolicyDecider`. When the policy delegates
``tool_call``, every call the built-in engine does not deny is put to Rego with the documented input
document; OPA can only tighten: its deny denies, its require_approval asks a human, its allow keeps
the built-in decision. OPA unavailable, erroring, undefined or malformed denies with the reason
(:class:`stockade.opa.OpaDelegate` fails closed). Each OPA answer is audited as ``opa_decision`` and
its reason travels in the decision the trace records. Without an ``opa:`` section, or with
``enabled: false``, the built-in engine alone decides.

When the policy delegates ``server_access``, every call (and every listing) first asks whether this
client may talk to this server at all: anything but allow denies the call and hides the server's
tools. :class:`OpaLaunchGate` wraps the gateway's launcher and asks ``secret_access`` for each
secret a server is granted before its sandbox is launched; a refusal means the server does not
start.

:class:`DataAccessQuestion` is the information-flow step's ``data_access`` (cross-namespace data):
a call whose context carries output of other servers is put to Rego with those servers and the
sink's sensitive argument names. :func:`gateway_questions_for` builds the asker of the questions
the gateway itself puts outside the decider: ``delegation`` (when the host application registers
a trusted context) and ``data_access``.
"""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any

from stockade.models import AuditSink, Category, Decision, ToolCall
from stockade.opa import OpaDelegate, OpaDenied, OpaEvaluator, OpaInput, Questions, evaluator_for

from ._config import ServerSpec
from ._errors import DownstreamError
from ._interceptors import CrossNamespace, DecisionContext, PolicyDecider
from ._launcher import DownstreamProcess, Launcher
from ._taint import ContextKey, TaintTracker

__all__ = [
    "DataAccessQuestion",
    "OpaDecider",
    "OpaLaunchGate",
    "gateway_questions_for",
    "opa_decider_for",
    "opa_launcher_for",
]


class OpaDecider:
    """A :class:`PolicyDecider`: the built-in decision first, then OPA, which may only tighten."""

    def __init__(
        self,
        inner: PolicyDecider,
        delegate: OpaDelegate,
        *,
        policy: Any = None,
        digests: Mapping[str, str] | None = None,
        audit: AuditSink | None = None,
        taint: TaintTracker | None = None,
        questions: Questions | None = None,
        tool_call: bool = True,
    ) -> None:
        self._inner = inner
        self._delegate = delegate
        self._policy = policy
        self._digests = dict(digests or {})
        self._audit = audit
        self.taint = taint  # set to the gateway's tracker to send taint provenance to Rego
        self._questions = questions  # server_access, when delegated
        self._tool_call = tool_call  # False: only server_access is delegated

    def _categories(self, call: ToolCall, base: Decision) -> tuple[Category, ...]:
        cats: list[Category] = [base.category] if base.category is not None else []
        if self._policy is not None and self._policy.has_server(call.server):
            for rule in self._policy.server(call.server).tools.rules:
                cat = getattr(rule, "category", None)
                if fnmatchcase(call.tool, rule.tool) and cat is not None and cat not in cats:
                    cats.append(cat)
        return tuple(cats)

    def _provenance(self, call: ToolCall) -> tuple[str, ...]:
        if self.taint is None:
            return ()
        key = ContextKey(client=call.client, conversation=call.session)
        return (self.taint.describe(key),)

    def opa_input(self, call: ToolCall, context: DecisionContext, base: Decision) -> OpaInput:
        """The exact document Rego sees as ``input`` for this call."""
        return OpaInput.for_call(
            call,
            image_digest=self._digests.get(call.server),
            categories=self._categories(call, base),
            tainted=context.tainted,
            provenance=self._provenance(call),
            policy_hash=str(getattr(self._policy, "effective_hash", "")),
        )

    def server_access(
        self, client: str, server: str, *, probe: bool, session: str = ""
    ) -> Decision:
        """May ``client`` talk to ``server`` at all? Allow unless ``server_access`` is delegated."""
        if self._questions is None or not self._questions.delegates("server_access"):
            return Decision.allow("server_access is not delegated to OPA", rule="builtin")
        decision = self._questions.ask(
            "server_access",
            client=client,
            server=server,
            image_digest=self._digests.get(server),
            session=session,
            extra={"action": "list" if probe else "call"},
            audit=not probe,
        )
        if decision.kind == "allow":
            return decision
        return Decision.deny(f"server access refused: {decision.reason}", rule=decision.rule)

    def __call__(self, call: ToolCall, context: DecisionContext) -> Decision:
        base = self._inner(call, context)
        if base.kind == "deny":
            return base
        access = self.server_access(
            call.client, call.server, probe=context.probe, session=call.session
        )
        if access.kind != "allow":
            return access
        if not self._tool_call:
            return base
        opa = self._delegate.decide(self.opa_input(call, context, base))
        if self._audit is not None and not context.probe:
            self._audit.append(
                "opa_decision",
                {
                    "client": call.client,
                    "server": call.server,
                    "tool": call.tool,
                    "result": opa.kind,
                    "reason": opa.reason,
                    "rule": opa.rule,
                },
                session_id=call.session or None,
            )
        if opa.kind == "allow":
            return base
        return opa

    def listable(self, client: str, server: str, tool: str) -> bool:
        """Listing: the built-in listing, and OPA does not deny the tool with empty arguments."""
        inner_listable = getattr(self._inner, "listable", None)
        if inner_listable is not None and not inner_listable(client, server, tool):
            return False
        call = ToolCall(client=client, server=server, tool=tool, arguments={})
        ctx = DecisionContext(tainted=False, exposed_name=tool, probe=True)
        return self(call, ctx).kind != "deny"


def opa_decider_for(
    policy: Any,
    inner: PolicyDecider,
    *,
    audit: AuditSink | None = None,
    evaluator: OpaEvaluator | None = None,
    digests: Mapping[str, str] | None = None,
) -> PolicyDecider:
    """``inner`` unless the policy delegates ``tool_call`` or ``server_access`` to OPA; then an
    :class:`OpaDecider`.

    The evaluator comes from the policy's ``opa:`` section (Rego modules beside the policy file,
    compiled now; or the OPA server URL with the section's timeout) unless one is given.
    """
    section = policy.doc.opa
    wanted = ("tool_call", "server_access")
    if section is None or not any(section.delegates(q) for q in wanted):
        return inner
    evaluator = evaluator or evaluator_for(policy)
    questions = Questions.for_policy(policy, audit=audit, evaluator=evaluator, only=wanted)
    return OpaDecider(
        inner,
        OpaDelegate(evaluator, section.prefix),
        policy=policy,
        digests=digests,
        audit=audit,
        questions=questions,
        tool_call=section.delegates("tool_call"),
    )


class OpaLaunchGate:
    """A :class:`Launcher` that asks ``secret_access`` for each granted secret before launching.

    The client is the gateway itself (``gateway``): the secret goes to the server's sandbox, not
    to an agent. Anything but allow (or OPA failing) refuses the launch with OPA's reason.
    """

    def __init__(self, inner: Launcher, questions: Questions, client: str = "gateway") -> None:
        self._inner = inner
        self._questions = questions
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)  # launchers carry extras (run_ids, close, ...)

    async def launch(self, server: ServerSpec) -> DownstreamProcess:
        for secret in server.sandbox.secrets:
            try:
                self._questions.require(
                    "secret_access",
                    what=f"secret {secret!r} for server {server.name!r}",
                    client=self._client,
                    server=server.name,
                    extra={"secret": secret, "purpose": "mount"},
                )
            except OpaDenied as e:
                raise DownstreamError(e.what, e.fix) from e
        return await self._inner.launch(server)


def opa_launcher_for(
    policy: Any,
    inner: Launcher,
    *,
    audit: AuditSink | None = None,
    evaluator: OpaEvaluator | None = None,
) -> Launcher:
    """``inner`` unless the policy delegates ``secret_access``; then an :class:`OpaLaunchGate`."""
    questions = Questions.for_policy(
        policy, audit=audit, evaluator=evaluator, only=("secret_access",)
    )
    return inner if questions is None else OpaLaunchGate(inner, questions)


class DataAccessQuestion:
    """A :data:`~._interceptors.CrossNamespaceCheck`: ``data_access`` put to Rego.

    Input: ``client``, ``server`` (the one called), ``tool``, ``session``, ``tainted``,
    ``provenance`` (the servers whose output is in the context) and ``extra``: ``from_servers``
    (those other than ``server``), ``provenance_complete`` and ``sensitive_arguments`` (names, each
    with ``trusted``: whether its value comes from the trusted instruction; never the values).
    """

    def __init__(self, questions: Questions, digests: Mapping[str, str] | None = None) -> None:
        self._questions = questions
        self._digests = dict(digests or {})

    def __call__(self, call: ToolCall, flow: CrossNamespace) -> Decision:
        return self._questions.ask(
            "data_access",
            client=call.client,
            server=call.server,
            tool=call.tool,
            image_digest=self._digests.get(call.server),
            session=call.session,
            tainted=flow.tainted,
            provenance=flow.from_servers,
            extra={
                "from_servers": list(flow.from_servers),
                "provenance_complete": flow.complete,
                "sensitive_arguments": [
                    {"name": name, "trusted": trusted} for name, trusted in flow.sensitive
                ],
            },
        )


def gateway_questions_for(
    policy: Any, *, audit: AuditSink | None = None, evaluator: OpaEvaluator | None = None
) -> Questions | None:
    """The asker of ``delegation`` and ``data_access`` when the policy delegates either, else
    None (the gateway then asks neither)."""
    return Questions.for_policy(
        policy, audit=audit, evaluator=evaluator, only=("delegation", "data_access")
    )
