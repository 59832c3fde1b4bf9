"""Gateway metrics through the API: read from the decision evidence every gateway records."""

from __future__ import annotations

from collections.abc import Callable

from stockade.api import ControlPlane
from stockade.identity import Role
from stockade.store import RunStore

from ._helpers import client_for, peer


def _call(outcome: str, kind: str | None) -> dict[str, object]:
    return {
        "client": "a",
        "tool": "s__t",
        "decision": None if kind is None else {"kind": kind, "reason": "r", "rule": ""},
        "outcome": outcome,
    }


def test_gateway_denials_by_stage_and_trust_boundary_violations_are_exported(
    cp: ControlPlane, open_store: Callable[[], RunStore]
) -> None:
    with open_store() as s:
        s.add_evidence("r1", "decision", _call("denied:information-flow", "allow"))
        s.add_evidence("r1", "decision", _call("denied:pinning", None))
        s.add_evidence("r1", "decision", _call("denied:policy", "deny"))
        s.add_evidence("r1", "decision", _call("ok", "allow"))
    text = client_for(cp, peer(Role.OPERATOR)).get("/metrics").text
    assert 'stockade_gateway_denials_total{stage="information-flow"} 1' in text
    assert 'stockade_gateway_denials_total{stage="pinning"} 1' in text
    assert 'stockade_gateway_denials_total{stage="policy"} 1' in text
    assert 'stockade_gateway_trust_boundary_violations_total{stage="information-flow"} 1' in text
    assert 'stockade_gateway_trust_boundary_violations_total{stage="pinning"} 1' in text
    assert 'stockade_gateway_trust_boundary_violations_total{stage="policy"}' not in text
    assert 'stockade_decisions_total{result="allow"} 3' in text


def test_a_hostile_stage_name_cannot_break_the_exposition(
    cp: ControlPlane, open_store: Callable[[], RunStore]
) -> None:
    with open_store() as s:
        s.add_evidence("r1", "decision", _call('denied:x"}\nevil 1', "deny"))
    text = client_for(cp, peer(Role.OPERATOR)).get("/metrics").text
    assert "\nevil 1" not in text
    assert 'stage="x\\"}\\nevil 1"' in text
