"""The per-server ``resources:`` section: unlisted resource uris are refused unless the operator
opts one server in (``unlisted_uris: route``); the gateway loader maps the opt-in to its spec."""

from __future__ import annotations

from pathlib import Path

import pytest
from _policy_helpers import MINIMAL, Writer, messages, valid

from stockade.gateway import load_policy_for_gateway

OPTED = MINIMAL + "    resources: {unlisted_uris: route}\n"


@pytest.mark.guarantee("gw-raw-uri-unlisted-opt-in")
def test_a_server_refuses_unlisted_uris_by_default(check: Writer) -> None:
    policy = valid(check(MINIMAL))
    assert policy.server("s").resources.unlisted_uris == "refuse"


def test_a_server_may_opt_in_to_routing_unlisted_uris(check: Writer) -> None:
    policy = valid(check(OPTED))
    assert policy.server("s").resources.unlisted_uris == "route"


@pytest.mark.parametrize(
    "section",
    ["resources: {unlisted_uris: guess}", "resources: {unlisted: route}", "resources: route"],
)
def test_an_unknown_resources_value_or_key_is_an_error(check: Writer, section: str) -> None:
    result = check(MINIMAL + f"    {section}\n")
    assert not result.ok
    assert messages(result)


def _opt_ins(tmp_path: Path, text: str) -> dict[str, str]:
    (tmp_path / "server.js").write_text("")
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return {s.name: s.unlisted_uris for s in load_policy_for_gateway(path).config.servers}


@pytest.mark.guarantee("gw-raw-uri-unlisted-opt-in")
def test_the_gateway_loader_maps_the_opt_in_to_each_server_spec(tmp_path: Path) -> None:
    text = OPTED + "  - name: t\n    command: [node, server.js]\n"
    assert _opt_ins(tmp_path, text) == {"s": "route", "t": "refuse"}


def test_several_opted_in_servers_stay_opted_in(tmp_path: Path) -> None:
    text = (
        OPTED
        + "  - name: t\n    command: [node, server.js]\n"
        + ("    resources: {unlisted_uris: route}\n")
    )
    assert _opt_ins(tmp_path, text) == {"s": "route", "t": "route"}  # ambiguous at routing


def test_the_default_leaves_the_effective_hash_as_it_was_and_the_opt_in_changes_it(
    check: Writer,
) -> None:
    plain = valid(check(MINIMAL))
    explicit = valid(check(MINIMAL + "    resources: {unlisted_uris: refuse}\n"))
    opted = valid(check(OPTED))
    assert "resources" not in plain.doc.servers[0].model_dump(mode="json")
    assert plain.effective_hash == explicit.effective_hash
    assert opted.effective_hash != plain.effective_hash
