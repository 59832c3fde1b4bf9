"""Schemathesis against the ASGI app, from the app's own OpenAPI description.

For each caller (an operator, a runner and a gateway, both holding a valid run token for run r1,
and a caller with no client certificate) and each operation, schemathesis generates requests from
the description, valid ones and (where an operation has parameters or a body) invalid ones, and
checks the answers: never a 5xx, a status the description documents, a body, headers and content
type that conform to it, invalid data rejected; and, without a client certificate, every route
answers 401 (even /healthz: the TLS handshake is the gate). Bounded and derandomised: seconds.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis import checks as st_checks

from stockade.api import ControlPlane, build_app, openapi_document, with_peer
from stockade.identity import Role, TokenAuthority
from stockade.policy import RateLimit

from ._helpers import peer

CHECKS = [
    st_checks.not_a_server_error,
    st_checks.status_code_conformance,
    st_checks.content_type_conformance,
    st_checks.response_schema_conformance,
    st_checks.response_headers_conformance,
    st_checks.negative_data_rejection,
]


def _run(cp: ControlPlane, role: Role | None, headers: dict[str, str], examples: int) -> int:
    schema = schemathesis.openapi.from_dict(openapi_document())
    schema.app = with_peer(build_app(cp), None if role is None else peer(role))
    seen = 0
    for result in schema.get_all_operations():
        op = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=op.as_strategy(generation_mode=mode))
            @settings(
                max_examples=examples,
                derandomize=True,
                database=None,
                deadline=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def check(case: Any) -> None:
                nonlocal seen
                seen += 1
                response = case.call_and_validate(headers=headers, checks=CHECKS)
                if role is None:
                    assert response.status_code == 401, (case.method, case.path, response.text)

            try:
                check()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # nothing to make invalid (no parameters)
    return seen


@pytest.mark.guarantee("cp-api-authenticated")
@pytest.mark.parametrize("role", [None, Role.OPERATOR, Role.RUNNER, Role.GATEWAY])
def test_schemathesis_finds_no_5xx_undocumented_or_non_conforming_answer(
    cp: ControlPlane, tokens: TokenAuthority, role: Role | None
) -> None:
    token = tokens.issue("r1", ("progress", "secret:api_key"))
    headers = {"Authorization": f"Bearer {token}"} if role in (Role.RUNNER, Role.GATEWAY) else {}
    roomy = RateLimit(
        rate=10_000, per=60
    )  # the limits are tested elsewhere; here every call counts
    cp = replace(cp, identity_limit=roomy, run_limit=roomy)
    assert _run(cp, role, headers, examples=6) > 0
