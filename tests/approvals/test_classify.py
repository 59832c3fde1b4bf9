"""Classification: operator tool rules plus argument inspection; unknown means sensitive."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stockade.approvals import ClassifierRules, classify, rules_from_policy
from stockade.models import Category, ToolCall
from stockade.policy import parse_policy

RULES = ClassifierRules(
    tool_categories={"send_*": Category.EXFILTRATION, "pay": Category.FINANCIAL},
    safe_tools=("read_note", "fetch"),
    sinks=("send_*",),
    approved_domains=("docs.example.com", "*.trusted.example"),
    path_allowlist=("data/",),
    amount_limit=0,
)


def call(tool: str, **arguments: object) -> ToolCall:
    return ToolCall(server="s", tool=tool, arguments=dict(arguments))


@pytest.mark.guarantee("apr-unknown-sensitive")
def test_a_tool_no_rule_mentions_is_sensitive() -> None:
    c = classify(call("mystery"), RULES)
    assert c.sensitive
    assert c.categories == (Category.EXFILTRATION,)
    assert c.decision().kind == "require_approval"


def test_a_safe_tool_with_harmless_arguments_is_not_sensitive() -> None:
    c = classify(call("read_note", path="data/notes.txt", count=3), RULES)
    assert not c.sensitive
    assert c.decision().kind == "allow"


def test_declared_categories_come_from_the_operator_rules() -> None:
    assert classify(call("send_mail"), RULES).categories == (Category.EXFILTRATION,)
    assert Category.FINANCIAL in classify(call("pay"), RULES).categories


@pytest.mark.guarantee("apr-classify-arguments")
def test_a_url_to_an_unapproved_domain_is_a_new_network_domain() -> None:
    ok = classify(call("fetch", url="https://docs.example.com/a"), RULES)
    sub = classify(call("fetch", url="https://x.trusted.example/a"), RULES)
    bad = classify(call("fetch", opts={"u": ["see https://evil.example/x?d=1"]}), RULES)
    assert not ok.sensitive
    assert not sub.sensitive
    assert bad.categories == (Category.NEW_NETWORK_DOMAIN,)
    assert "evil.example" in bad.reasons[0]


def test_a_sink_sending_to_a_new_domain_is_also_exfiltration() -> None:
    c = classify(call("send_mail", webhook="https://evil.example/hook"), RULES)
    assert set(c.categories) == {Category.EXFILTRATION, Category.NEW_NETWORK_DOMAIN}


@pytest.mark.guarantee("apr-classify-arguments")
@pytest.mark.parametrize("path", ["/etc/passwd", "~/.ssh/id_rsa", "data/../../etc", "../x"])
def test_paths_outside_the_allowlist_are_file_access(path: str) -> None:
    assert Category.FILE_ACCESS in classify(call("read_note", path=path), RULES).categories


@pytest.mark.guarantee("apr-classify-arguments")
def test_amounts_and_credentials_are_recognised() -> None:
    c = classify(call("read_note", amount=250, api_key="sk-123", flag=True), RULES)
    assert set(c.categories) == {Category.FINANCIAL, Category.CREDENTIALS}


@given(st.recursive(st.text(max_size=20), lambda inner: st.lists(inner, max_size=3), max_leaves=20))
def test_adding_an_argument_never_removes_a_category(extra: object) -> None:
    base = call("fetch", url="https://evil.example/x")
    more = call("fetch", url="https://evil.example/x", extra=extra)
    assert set(classify(base, RULES).categories) <= set(classify(more, RULES).categories)


def test_rules_come_from_the_policy_file(tmp_path: Path) -> None:
    text = """
version: 1
default: deny
registries: [registry.example.com/web]
servers:
  - name: web
    image: registry.example.com/web@sha256:{d}
    network: {{mode: allowlist, domains: [docs.example.com]}}
    tools:
      rules:
        - {{tool: fetch, action: allow, tier: low}}
        - {{tool: post, action: approve, category: exfiltration}}
  - name: offline
    image: registry.example.com/web@sha256:{d}
    network: none
""".format(d="0" * 64)
    result = parse_policy(text, file=str(tmp_path / "p.yaml"))
    assert result.policy is not None, result.errors
    policy = result.policy
    rules = rules_from_policy(policy, "web")
    assert rules.approved_domains == ("docs.example.com",)
    assert rules.tool_categories == {"post": Category.EXFILTRATION}
    assert rules.safe_tools == ("fetch",)
    assert classify(call("fetch", url="https://docs.example.com/"), rules).categories == ()
    assert rules_from_policy(policy, "other") == ClassifierRules()
    # only a server whose policy says network: none counts as offline (unknown: networked)
    assert rules.network is True
    assert rules_from_policy(policy, "offline").network is False
    assert rules_from_policy(policy, "other").network is True


def test_the_classifying_decider_only_tightens_an_allow() -> None:
    from stockade.approvals import ClassifyingDecider
    from stockade.models import Decision

    def inner(c: ToolCall, ctx: object) -> Decision:
        return Decision.deny("no") if c.tool == "rm" else Decision.allow(rule="r1")

    d = ClassifyingDecider(inner, lambda server: RULES)
    assert d(call("fetch", url="https://docs.example.com/"), None).kind == "allow"
    risky = d(call("fetch", url="https://evil.example/"), None)
    assert risky.kind == "require_approval"
    assert risky.category == Category.NEW_NETWORK_DOMAIN
    assert d(call("rm", url="https://evil.example/"), None).kind == "deny"
    # arguments only: an allowed tool that no classifier rule names is left to the policy
    assert d(call("unlisted"), None).kind == "allow"
