"""Delegating a decision to OPA: fail closed on every error, the reason carried in the decision."""

from __future__ import annotations

from stockade.models import Decision

from ._evaluators import OpaError, OpaEvaluator, Undefined
from ._input import OpaInput, decision_from_answer

__all__ = ["DEFAULT_PREFIX", "OpaDelegate"]

DEFAULT_PREFIX = "stockade"


class OpaDelegate:
    """Asks ``data.<prefix>.<question>.decision`` and maps the answer to a :class:`Decision`.

    If OPA is unavailable, errors, has no answer or answers malformed, the decision is **deny**
    with the reason; there is no fall-back to the built-in engine (only an operator who turns OPA
    off gets that).
    """

    def __init__(self, evaluator: OpaEvaluator, prefix: str = DEFAULT_PREFIX) -> None:
        self._evaluator = evaluator
        self._prefix = prefix

    def path(self, question: str) -> str:
        return f"{self._prefix}.{question}.decision"

    def decide(self, opa_input: OpaInput) -> Decision:
        path = self.path(opa_input.question)
        rule = f"opa:{path}"
        try:
            answer = self._evaluator.evaluate(path, opa_input.model_dump(mode="json"))
        except OpaError as e:
            return Decision.deny(f"OPA could not decide ({e.what}): denied", rule=rule)
        return decision_from_answer(answer, rule)

    def probe(self) -> str:
        """For readiness: evaluate a known path; raise OpaError when OPA cannot answer at all."""
        try:
            self._evaluator.evaluate(self._prefix, {})
        except OpaError as e:
            if not isinstance(e, Undefined):
                raise
        return "answering"
