"""OPA adapter: delegate decisions to Rego (in process via regopy, or an OPA server URL).

See docs/policy.md ("OPA") for the input document and query paths. Fail closed: OPA configured but
unavailable, erroring, undefined or malformed means deny, with the reason in the decision.
"""

from ._delegate import DEFAULT_PREFIX, OpaDelegate
from ._evaluators import OpaError, OpaEvaluator, OpaServerEvaluator, RegoEvaluator, Undefined
from ._input import QUESTIONS, OpaInput, Question, decision_from_answer

__all__ = [
    "DEFAULT_PREFIX",
    "QUESTIONS",
    "OpaDelegate",
    "OpaError",
    "OpaEvaluator",
    "OpaInput",
    "OpaServerEvaluator",
    "Question",
    "RegoEvaluator",
    "Undefined",
    "decision_from_answer",
]
