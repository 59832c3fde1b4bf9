"""The gateway wired to the real policy: servers, sandbox limits, engine decisions, sinks."""

from __future__ import annotations

from pathlib import Path

import pytest

from stockade.errors import StockadeError
from stockade.gateway import (
    DecisionContext,
    EngineDecider,
    load_any,
    load_policy_for_gateway,
    sandbox_spec_for,
)
from stockade.models import Category, ToolCall
from stockade.testing import FakeClock

POLICY = """\
version: 1
default: deny
servers:
  - name: mail
    command: ["/usr/bin/python3", "srv/server.py"]
    tofu: true
    memory_mb: 300
    secrets: [MAIL_TOKEN]
    fs_allowlist:
      - path: srv/
    tools:
      rules:
        - tool: echo
          action: allow
          tier: low
          rate_limit: {rate: 1, per: 60, burst: 1}
        - tool: send_email
          action: allow
          tier: medium
          category: exfiltration
        - tool: "get_*"
          action: allow
          tier: low
          category: exfiltration
"""


def write(tmp_path: Path, text: str = POLICY) -> Path:
    (tmp_path / "srv").mkdir(exist_ok=True)
    (tmp_path / "srv" / "server.py").write_text("")
    p = tmp_path / "policy.yaml"
    p.write_text(text)
    return p


def test_servers_and_sandbox_limits_come_from_the_policy(tmp_path: Path) -> None:
    loaded = load_policy_for_gateway(write(tmp_path))
    (spec,) = loaded.config.servers
    assert spec.name == "mail"
    assert spec.tofu is True
    assert spec.sandbox.memory_mb == 300
    assert [b.source for b in spec.sandbox.binds] == [str((tmp_path / "srv").resolve())]
    assert loaded.hash.startswith("sha256:")
    assert spec.sandbox.secrets == ("MAIL_TOKEN",)
    boxed = sandbox_spec_for(spec)
    assert boxed.secrets == ("MAIL_TOKEN",)
    assert boxed.runtime.value == "gvisor"
    assert boxed.network.mode == "none"
    assert boxed.memory_mb == 300


@pytest.mark.guarantee("gw-flow-sink")
def test_sensitive_categories_become_information_flow_sinks_on_every_string_argument(
    tmp_path: Path,
) -> None:
    sinks = load_policy_for_gateway(write(tmp_path)).sinks
    assert set(sinks) == {("mail", "send_email")}  # globs are decided by the engine alone
    assert sinks[("mail", "send_email")].sensitive == ("*",)
    assert sinks[("mail", "send_email")].category == Category.EXFILTRATION


def test_engine_decisions_and_probes_do_not_consume_rate_limits(tmp_path: Path) -> None:
    loaded = load_policy_for_gateway(write(tmp_path))
    decider = EngineDecider(loaded.policy, FakeClock())
    call = ToolCall(server="mail", tool="echo", arguments={}, client="stdio")
    probe = DecisionContext(tainted=False, exposed_name="mail__echo", probe=True)
    real = DecisionContext(tainted=False, exposed_name="mail__echo")
    for _ in range(3):
        assert decider(call, probe).kind == "allow"
    assert decider(call, real).kind == "allow"
    assert decider(call, real).kind == "deny"  # burst of one used up
    unknown = ToolCall(server="mail", tool="rm", arguments={}, client="stdio")
    assert decider(unknown, real).kind == "deny"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (POLICY.replace("name: mail", "name: Mail_1"), "cannot be namespaced"),
    ],
)
def test_servers_the_gateway_cannot_serve_are_refused(
    tmp_path: Path, text: str, needle: str
) -> None:
    with pytest.raises(StockadeError, match=needle):
        load_policy_for_gateway(write(tmp_path, text))


def test_load_any_tells_the_two_formats_apart(tmp_path: Path) -> None:
    cfg, pins, loaded = load_any(write(tmp_path))
    assert loaded is not None
    assert pins == tmp_path / "pins"
    section = tmp_path / "gw.yaml"
    section.write_text("gateway:\n  servers: []\n")
    cfg, pins, loaded = load_any(section)
    assert loaded is None
    assert cfg.servers == ()


def test_listing_follows_rules_without_arguments_or_rate_limits(tmp_path: Path) -> None:
    loaded = load_policy_for_gateway(write(tmp_path))
    decider = EngineDecider(loaded.policy, FakeClock())
    assert decider.listable("stdio", "mail", "echo")
    assert decider.listable("stdio", "mail", "get_thing")  # glob rule
    assert not decider.listable("stdio", "mail", "rm")  # no rule: default deny
    assert not decider.listable("stdio", "other", "echo")


def test_relative_code_paths_become_absolute_read_only_binds(tmp_path: Path) -> None:
    text = POLICY.replace("    fs_allowlist:\n      - path: srv/\n", "")
    (spec,) = load_policy_for_gateway(write(tmp_path, text)).config.servers
    code = str((tmp_path / "srv").resolve())
    assert spec.command == ("/usr/bin/python3", f"{code}/server.py")
    assert [(b.source, b.target, b.mode) for b in spec.sandbox.binds] == [(code, code, "ro")]
    assert spec.package_tree == code


def test_code_paths_escaping_the_policy_directory_are_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "server.py").write_text("")
    base = tmp_path / "p"
    base.mkdir()
    (base / "srv").symlink_to(outside)
    text = POLICY.replace("    fs_allowlist:\n      - path: srv/\n", "")
    p = base / "policy.yaml"
    p.write_text(text)
    with pytest.raises(StockadeError, match="outside the policy"):
        load_policy_for_gateway(p)


@pytest.mark.guarantee("gw-annotations-never-lower")
def test_server_annotations_never_lower_a_decision(tmp_path: Path) -> None:
    text = POLICY.replace(
        "        - tool: send_email\n          action: allow",
        "        - tool: send_email\n          action: approve",
    )
    decider = EngineDecider(load_policy_for_gateway(write(tmp_path, text)).policy, FakeClock())
    call = ToolCall(server="mail", tool="send_email", arguments={}, client="stdio")
    hints = {"readOnlyHint": True, "destructiveHint": False, "openWorldHint": False}
    plain = DecisionContext(tainted=False, exposed_name="mail__send_email")
    hinted = DecisionContext(tainted=False, exposed_name="mail__send_email", annotations=hints)
    assert decider(call, plain).kind == "require_approval"
    assert decider(call, hinted).kind == "require_approval"


def test_the_unlisted_uri_opt_in_is_a_field_of_the_server_spec(tmp_path: Path) -> None:
    text = POLICY + "    resources: {unlisted_uris: route}\n  - name: quiet\n    command: [node]\n"
    by_name = {s.name: s for s in load_policy_for_gateway(write(tmp_path, text)).config.servers}
    assert by_name["mail"].unlisted_uris == "route"
    assert by_name["quiet"].unlisted_uris == "refuse"


def test_the_stand_alone_format_takes_the_opt_in_and_refuses_other_values(tmp_path: Path) -> None:
    base = "gateway:\n  servers:\n    - name: ev\n      command: [node]\n"
    p = tmp_path / "gw.yaml"
    p.write_text(base)
    assert load_any(p)[0].servers[0].unlisted_uris == "refuse"
    p.write_text(base + "      unlisted_uris: route\n")
    assert load_any(p)[0].servers[0].unlisted_uris == "route"
    p.write_text(base + "      unlisted_uris: guess\n")
    with pytest.raises(StockadeError, match="unlisted_uris"):
        load_any(p)
