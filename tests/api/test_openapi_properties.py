"""Property tests against the OpenAPI description: whatever the caller, role or parameters, the
app answers only with responses the description documents, and errors in the documented shape."""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stockade.api import ControlPlane, openapi_document
from stockade.identity import Role

from ._helpers import client_for, peer

DOC = openapi_document()
OPERATIONS = [
    (path, method.upper(), op) for path, item in DOC["paths"].items() for method, op in item.items()
]
_CLIENTS: dict[object, Any] = {}
ERROR_SCHEMA = DOC["components"]["schemas"]["Error"]
SEGMENT = st.text(
    alphabet=st.characters(codec="ascii", categories=["L", "N"], include_characters="-_."),
    min_size=1,
    max_size=12,
).filter(lambda s: s not in {".", ".."})


def test_every_route_of_the_app_is_described_and_nothing_else(cp: ControlPlane) -> None:
    from starlette.routing import Route

    from stockade.api import build_app

    routes = {
        (r.path, m)
        for r in build_app(cp).routes
        if isinstance(r, Route)
        for m in (r.methods or ())
        if m != "HEAD"
    }
    assert routes == {(p, m) for p, m, _ in OPERATIONS}


@pytest.mark.guarantee("cp-api-authenticated")
@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    op=st.sampled_from(OPERATIONS),
    role=st.sampled_from([None, *Role]),
    run_id=st.one_of(st.sampled_from(["r1", "r2"]), SEGMENT),
    limit=st.one_of(st.none(), st.integers(-5, 2000), st.text(max_size=5)),
    token=st.one_of(
        st.none(), st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
    ),
)
def test_responses_are_documented_and_errors_have_the_documented_shape(
    cp: ControlPlane,
    *,
    op: tuple[str, str, dict[str, Any]],
    role: Role | None,
    run_id: str,
    limit: int | str | None,
    token: str | None,
) -> None:
    path, method, spec = op
    url = re.sub(r"\{run_id\}", run_id, path)
    params = {"limit": str(limit)} if limit is not None and path == "/v1/runs" else None
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    body = {"message": "progress"} if method == "POST" else None
    if _CLIENTS.get("cp") is not cp:  # one client per role for this test's control plane
        _CLIENTS.clear()
        _CLIENTS["cp"] = cp
    if role not in _CLIENTS:
        _CLIENTS[role] = client_for(cp, None if role is None else peer(role))
    client = _CLIENTS[role]
    r = client.request(method, url, params=params, headers=headers, json=body)
    documented = set(spec["responses"])
    assert str(r.status_code) in documented, (method, url, r.status_code, r.text[:200])
    if r.status_code >= 400:
        jsonschema.validate(r.json(), ERROR_SCHEMA)
    if r.status_code == 401 or role is None:
        assert role is None or path == "/v1/runs/{run_id}/progress"
