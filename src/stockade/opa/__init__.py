"""OPA adapter: delegate decisions to Rego (in process via regopy, or an OPA server URL).

See docs/policy.md ("OPA") for the input document and query paths. Fail closed: OPA configured but
unavailable, erroring, undefined or malformed means deny, with the reason in the decision.
"""

from ._delegate import DEFAULT_PREFIX, OpaDelegate
from ._evaluators import OpaError, OpaEvaluator, OpaServerEvaluator, RegoEvaluator, Undefined
from ._input import QUESTIONS, OpaInput, Question, decision_from_answer
from ._questions import OpaDenied, Questions, authorise_run, evaluator_for, local_client

__all__ = [
    "DEFAULT_PREFIX",
    "QUESTIONS",
    "OpaDelegate",
    "OpaDenied",
    "OpaError",
    "OpaEvaluator",
    "OpaInput",
    "OpaServerEvaluator",
    "Question",
    "Questions",
    "RegoEvaluator",
    "Undefined",
    "authorise_run",
    "decision_from_answer",
    "evaluator_for",
    "local_client",
]
