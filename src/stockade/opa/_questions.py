"""The policy's delegated questions, asked where they are decided (docs/policy.md, "OPA").

:func:`evaluator_for` builds the evaluator the policy's ``opa:`` section names (its Rego modules,
compiled now, or its OPA server). :class:`Questions` puts one question to it with the documented
input document, audits the answer as ``opa_decision`` (question, client, server, result, reason,
rule) and fails closed: OPA unavailable, erroring, undefined or malformed denies with the reason.
A question the policy does not delegate is not asked (the built-in decision stands).
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Iterable
from typing import Any

from stockade.models import AuditSink, Decision

from ._delegate import OpaDelegate
from ._evaluators import OpaError, OpaEvaluator, OpaServerEvaluator, RegoEvaluator
from ._input import OpaInput, Question

__all__ = ["OpaDenied", "Questions", "authorise_run", "evaluator_for", "local_client"]


# input.extra fields copied into the opa_decision event (names and identities, never values)
_AUDITED_EXTRA = ("secret", "delegate_to", "from_servers")


class OpaDenied(OpaError):
    """A delegated question was answered with something other than allow (or OPA failed)."""


def evaluator_for(policy: Any) -> OpaEvaluator:
    """The evaluator of the policy's ``opa:`` section: its Rego modules, or its OPA server."""
    section = policy.doc.opa
    if section.mode == "url":
        return OpaServerEvaluator(section.url, timeout_s=section.timeout_s)
    from stockade.policy._opa import read_opa_modules

    modules, problems = read_opa_modules({"opa": {"modules": list(section.modules)}}, policy.file)
    if problems:
        raise OpaError(
            f"the policy's Rego modules cannot be used: {problems[0].what}", problems[0].fix
        )
    return RegoEvaluator(modules)


def local_client() -> str:
    """Who runs this command: the local user name (``uid:N`` if the uid has no name)."""
    uid = os.getuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid:{uid}"


class Questions:
    """Asks the questions a policy delegates; built from the policy with :meth:`for_policy`."""

    def __init__(
        self,
        delegate: OpaDelegate,
        delegated: Iterable[str],
        *,
        policy_hash: str = "",
        audit: AuditSink | None = None,
    ) -> None:
        self._delegate = delegate
        self._delegated = frozenset(delegated)
        self._policy_hash = policy_hash
        self._audit = audit

    @classmethod
    def for_policy(
        cls,
        policy: Any,
        *,
        audit: AuditSink | None = None,
        evaluator: OpaEvaluator | None = None,
        only: Iterable[str] | None = None,
    ) -> Questions | None:
        """None unless the policy delegates one of ``only`` (default: any question) to OPA."""
        section = policy.doc.opa
        if section is None or not section.enabled:
            return None
        delegated = [q for q in section.delegate if only is None or q in set(only)]
        if not delegated:
            return None
        return cls(
            OpaDelegate(evaluator or evaluator_for(policy), section.prefix),
            delegated,
            policy_hash=str(getattr(policy, "effective_hash", "")),
            audit=audit,
        )

    def delegates(self, question: str) -> bool:
        return question in self._delegated

    def ask(
        self,
        question: Question,
        *,
        client: str,
        server: str = "",
        tool: str = "",
        image_digest: str | None = None,
        session: str = "",
        tainted: bool = False,
        provenance: tuple[str, ...] = (),
        extra: dict[str, Any] | None = None,
        audit: bool = True,
    ) -> Decision:
        """OPA's decision, or allow with rule ``builtin`` when ``question`` is not delegated."""
        if question not in self._delegated:
            return Decision.allow(f"{question} is not delegated to OPA", rule="builtin")
        doc = OpaInput(
            question=question,
            client=client,
            server=server,
            tool=tool,
            image_digest=image_digest,
            session=session,
            tainted=tainted,
            provenance=provenance,
            policy_hash=self._policy_hash,
            extra=extra or {},
        )
        decision = self._delegate.decide(doc)
        if audit and self._audit is not None:
            self._audit.append(
                "opa_decision",
                {
                    "question": question,
                    "client": client,
                    "server": server,
                    "tool": tool,
                    "result": decision.kind,
                    "reason": decision.reason,
                    "rule": decision.rule,
                    **{k: v for k, v in (extra or {}).items() if k in _AUDITED_EXTRA},
                },
                session_id=session or None,
            )
        return decision

    def require(self, question: Question, *, what: str, **kw: Any) -> Decision:
        """:meth:`ask`, raising :class:`OpaDenied` unless the answer is allow.

        ``require_approval`` is not an allow: these questions are asked where no human is in
        the loop, so it refuses too (with OPA's reason).
        """
        decision = self.ask(question, **kw)
        if decision.kind != "allow":
            raise OpaDenied(
                f"OPA refused {what} ({question}: {decision.kind}): {decision.reason}",
                f"see the Rego rule {decision.rule}, or ask the operator to change the policy",
            )
        return decision


def authorise_run(
    questions: Questions,
    *,
    client: str,
    server: str,
    spec: Any,
    workload: str,
    kind: str,
) -> None:
    """Before a run is launched: ``task`` for the run, then ``secret_access`` for each secret.

    Raises :class:`OpaDenied` at the first refusal; questions not delegated are not asked.
    """
    questions.require(
        "task",
        what=f"the {kind} run of {workload[:200]!r}",
        client=client,
        server=server,
        image_digest=spec.image_digest,
        extra={
            "kind": kind,
            "workload": workload[:1000],
            "argv": list(spec.argv)[:64],
            "runtime": spec.runtime.value,
            "network": spec.network.model_dump(mode="json"),
            "secrets": list(spec.secrets),
        },
    )
    for name in spec.secrets:
        questions.require(
            "secret_access",
            what=f"secret {name!r} for this run",
            client=client,
            server=server,
            image_digest=spec.image_digest,
            extra={"secret": name, "purpose": "mount"},
        )
