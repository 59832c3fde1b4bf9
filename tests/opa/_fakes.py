"""OPA evaluators for the tests: an OPA server that cannot be reached, one that answers 500, and
a recorder that keeps each input document and answers a fixed decision."""

from __future__ import annotations

from typing import Any

import httpx

from stockade.opa import OpaServerEvaluator

__all__ = ["Recorder", "erroring", "unreachable"]


def unreachable() -> OpaServerEvaluator:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    return OpaServerEvaluator("http://127.0.0.1:9", transport=httpx.MockTransport(refuse))


def erroring() -> OpaServerEvaluator:
    return OpaServerEvaluator(
        "http://127.0.0.1:9", transport=httpx.MockTransport(lambda r: httpx.Response(500))
    )


class Recorder:
    """An evaluator that records every input document and gives ``answer``."""

    def __init__(self, answer: object | None = None) -> None:
        self.answer = {"result": "allow"} if answer is None else answer
        self.seen: list[dict[str, Any]] = []

    def evaluate(self, path: str, input_doc: dict[str, Any]) -> object:
        self.seen.append(input_doc)
        return self.answer
