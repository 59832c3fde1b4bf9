"""One 2026-07-28 request as the gateway received it, for the input-required flow.

The gateway sets a :class:`Round` for the duration of a 2026-07-28 ``tools/call``,
``resources/read`` or ``prompts/get`` (a context
variable: the approver runs in a worker thread that inherits it); the elicitation channel reads it
to answer with an ``input_required`` result instead of waiting, and to resume the request a retry
names in its sealed ``requestState``. Outside such a call there is no round and nothing changes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from ._elicit import ElicitMode, client_modes

__all__ = ["CAPABILITIES_META", "Round", "current_round", "round_from", "serving_round"]

#: Where a 2026-07-28 request carries the client's capabilities (there is no ``initialize``).
CAPABILITIES_META = "io.modelcontextprotocol/clientCapabilities"


@dataclass
class Round:
    """What one stateless request carried, and (once decided) the result to answer with."""

    client: str
    modes: frozenset[ElicitMode]
    state: object | None = None  # the requestState echoed back (None: not a retry)
    responses: Mapping[str, Any] | None = None  # inputResponses of a retry
    result: dict[str, Any] | None = None  # set when the call is answered with input_required


_ROUND: ContextVar[Round | None] = ContextVar("stockade_input_round", default=None)


def round_from(params: Mapping[str, Any], client: str) -> Round:
    """The round of a 2026-07-28 request from its params (capabilities from ``_meta``)."""
    meta = params.get("_meta")
    caps = meta.get(CAPABILITIES_META) if isinstance(meta, Mapping) else None
    responses = params.get("inputResponses")
    return Round(
        client=client,
        modes=client_modes(caps if isinstance(caps, Mapping) else None),
        state=params.get("requestState"),
        responses=responses if isinstance(responses, Mapping) else None,
    )


def current_round() -> Round | None:
    return _ROUND.get()


@contextlib.contextmanager
def serving_round(round_: Round | None) -> Iterator[Round | None]:
    """Make ``round_`` the current one while the call is decided (``None``: not a modern call)."""
    token = _ROUND.set(round_)
    try:
        yield round_
    finally:
        _ROUND.reset(token)
