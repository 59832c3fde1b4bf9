"""The decision engine: tables of cases for each semantic rule, then its algebra as properties."""

from __future__ import annotations

from typing import Any

import pytest
from _policy_helpers import make_policy, with_rules
from hypothesis import given
from hypothesis import strategies as st

from stockade.models import Category, Decision, RiskTier, ToolCall
from stockade.policy import (
    DecisionContext,
    DecisionEngine,
    Policy,
    RateState,
    decide,
)

CTX = DecisionContext(now=1000.0)
LOW_ALLOW = {"action": "allow", "tier": "low"}


def call(tool: str, server: str = "s", client: str = "anonymous", **arguments: Any) -> ToolCall:
    return ToolCall(server=server, tool=tool, arguments=arguments, client=client)


def one(policy: Policy, c: ToolCall, ctx: DecisionContext = CTX) -> Decision:
    return DecisionEngine(policy).decide(c, ctx)[0]


# -- unknowns and defaults ---------------------------------------------------------------------


@pytest.mark.guarantee("engine-unknown-denied")
def test_an_unknown_server_is_denied() -> None:
    d = one(with_rules({"tool": "*", **LOW_ALLOW}), call("echo", server="other"))
    assert d.kind == "deny"
    assert d.reason == "unknown server 'other'"


@pytest.mark.guarantee("engine-unknown-denied")
def test_an_empty_rule_set_denies_everything() -> None:
    d = one(with_rules(), call("echo"))
    assert d.kind == "deny"
    assert "no rule allows tool 'echo'" in d.reason


@pytest.mark.guarantee("engine-unknown-denied")
def test_a_tool_no_rule_matches_is_denied() -> None:
    p = with_rules({"tool": "read_*", **LOW_ALLOW}, {"tool": "echo", **LOW_ALLOW})
    assert one(p, call("read_file")).allowed
    assert one(p, call("echo")).allowed
    for tool in ("Echo", "echo2", "xread_file", "write_file"):
        assert one(p, call(tool)).kind == "deny", tool


def test_an_empty_policy_denies_everything() -> None:
    assert one(make_policy([]), call("echo")).kind == "deny"


def test_untrusted_names_in_reasons_are_neutralised() -> None:
    d = one(with_rules(), call("evil\x1b]0;pwn\x07\u202e"))
    assert "\x1b" not in d.reason
    assert "\u202e" not in d.reason


# -- deny beats allow; most specific wins ------------------------------------------------------


@pytest.mark.guarantee("engine-deny-beats-allow")
@pytest.mark.parametrize(
    "rules",
    [
        [{"tool": "echo", **LOW_ALLOW}, {"tool": "echo", "action": "deny"}],
        [{"tool": "echo", "action": "deny"}, {"tool": "echo", **LOW_ALLOW}],
        [{"tool": "echo", **LOW_ALLOW}, {"tool": "*", "action": "deny"}],
        [
            {"tool": "e*", "action": "deny"},
            {"tool": "echo", "action": "approve", "category": "file_access"},
        ],
    ],
)
def test_a_matching_deny_rule_always_wins(rules: list[dict[str, Any]]) -> None:
    d = one(with_rules(*rules), call("echo"))
    assert d.kind == "deny"
    assert "is denied by rule" in d.reason


@pytest.mark.parametrize(
    ("rules", "expected_rule"),
    [
        # an exact name beats any glob
        (
            [
                {"tool": "*", "action": "approve", "category": "file_access"},
                {"tool": "echo", **LOW_ALLOW},
            ],
            1,
        ),
        (
            [
                {"tool": "echo", **LOW_ALLOW},
                {"tool": "ech?", "action": "approve", "category": "file_access"},
            ],
            0,
        ),
        # more literal characters beat fewer
        (
            [
                {"tool": "*", **LOW_ALLOW},
                {"tool": "ec*", "action": "approve", "category": "file_access"},
            ],
            1,
        ),
        # a tie goes to the stricter action, then to the earlier rule
        (
            [
                {"tool": "ec*", **LOW_ALLOW},
                {"tool": "e*o", "action": "approve", "category": "file_access"},
            ],
            1,
        ),
        ([{"tool": "ec*", **LOW_ALLOW}, {"tool": "e*o", **LOW_ALLOW}], 0),
    ],
)
def test_the_most_specific_matching_rule_decides(
    rules: list[dict[str, Any]], expected_rule: int
) -> None:
    d = one(with_rules(*rules), call("echo"))
    assert d.rule == f"s.tools.rules[{expected_rule}]"


# -- tiers, categories, approval ----------------------------------------------------------------


@pytest.mark.guarantee("engine-sensitive-needs-approval")
@pytest.mark.parametrize(
    ("rule", "kind", "category"),
    [
        ({"action": "allow", "tier": "low"}, "allow", None),
        ({"action": "allow", "tier": "medium", "category": "financial"}, "allow", None),
        (
            {"action": "allow", "tier": "high", "category": "financial"},
            "require_approval",
            Category.FINANCIAL,
        ),
        (
            {"action": "allow", "tier": "critical", "category": "credentials"},
            "require_approval",
            Category.CREDENTIALS,
        ),
        (
            {
                "action": "allow",
                "tier": "critical",
                "category": "credentials",
                "allow_without_approval": True,
            },
            "allow",
            None,
        ),
        ({"action": "allow", "tier": "high", "allow_without_approval": True}, "allow", None),
        (
            {"action": "approve", "tier": "low", "category": "exfiltration"},
            "require_approval",
            Category.EXFILTRATION,
        ),
        (
            {"action": "approve", "category": "config_change"},
            "require_approval",
            Category.CONFIG_CHANGE,
        ),
    ],
)
def test_tier_and_category_decide_when_approval_is_needed(
    rule: dict[str, Any], kind: str, category: Category | None
) -> None:
    d = one(with_rules({"tool": "t", **rule}), call("t"))
    assert (d.kind, d.category) == (kind, category)
    assert d.tier == RiskTier(rule.get("tier", "high"))
    assert d.rule == "s.tools.rules[0]"


# -- arguments ----------------------------------------------------------------------------------

SCHEMA_RULE = {
    "tool": "t",
    **LOW_ALLOW,
    "arguments": {
        "json_schema": {
            "type": "object",
            "properties": {"n": {"type": "integer", "maximum": 5}},
            "required": ["n"],
            "additionalProperties": False,
        }
    },
}


@pytest.mark.guarantee("engine-argument-constraints")
@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        ({"n": 1}, None),
        ({"n": 6}, "argument n fails json_schema keyword 'maximum'"),
        ({"n": "1"}, "argument n fails json_schema keyword 'type'"),
        ({}, "argument (all) fails json_schema keyword 'required'"),
        ({"n": 1, "extra": 2}, "argument (all) fails json_schema keyword 'additionalProperties'"),
    ],
)
def test_the_json_schema_of_the_rule_is_enforced(
    arguments: dict[str, Any], reason: str | None
) -> None:
    d = one(with_rules(SCHEMA_RULE), call("t", **arguments))
    if reason is None:
        assert d.allowed
    else:
        assert d.kind == "deny"
        assert d.reason == f"{reason} (rule s.tools.rules[0])"


def arg_rule(**constraint: Any) -> Policy:
    return with_rules({"tool": "t", **LOW_ALLOW, "arguments": {"rules": {"a": constraint}}})


@pytest.mark.guarantee("engine-argument-constraints")
@pytest.mark.parametrize(
    ("constraint", "value", "ok"),
    [
        ({"enum": ["x", 1]}, "x", True),
        ({"enum": ["x", 1]}, 1, True),
        ({"enum": ["x", 1]}, True, False),  # True == 1 in Python; never here
        ({"enum": ["x", 1]}, 1.0, False),
        ({"enum": ["x", 1]}, "X", False),
        ({"pattern": "[a-z]+"}, "abc", True),
        ({"pattern": "[a-z]+"}, "abc; rm -rf /", False),  # full match, not search
        ({"pattern": "[a-z]+"}, 5, False),
        ({"prefix": "SELECT "}, "SELECT 1", True),
        ({"prefix": "SELECT "}, "DROP TABLE x", False),
        ({"max_length": 3}, "abc", True),
        ({"max_length": 3}, "abcd", False),
        ({"max_length": 3}, ["a"], False),
        ({"path_under": ["/data"]}, "/data", True),
        ({"path_under": ["/data"]}, "/data/x/y.txt", True),
        ({"path_under": ["/data"]}, "/data/./x", True),
        ({"path_under": ["/data"]}, "/data/../etc/passwd", False),
        ({"path_under": ["/data"]}, "/data/x/../../etc", False),
        ({"path_under": ["/data"]}, "/database", False),
        ({"path_under": ["/data"]}, "data/x", False),
        ({"path_under": ["/data"]}, "~/x", False),
        ({"path_under": ["/data"]}, "file:///data/x", False),
        ({"path_under": ["/data"]}, "/data/x\x00/../../etc", False),
        ({"path_under": ["/data"]}, "/data\\..\\etc", False),
        ({"path_under": ["/data"]}, "//data/x", True),
        ({"domains": ["api.example.com", "*.example.org"]}, "https://api.example.com/x", True),
        ({"domains": ["api.example.com", "*.example.org"]}, "http://a.b.example.org", True),
        ({"domains": ["api.example.com", "*.example.org"]}, "https://example.org/", False),
        ({"domains": ["api.example.com"]}, "https://api.example.com.evil.io/", False),
        ({"domains": ["api.example.com"]}, "https://api.example.com@evil.io/", False),
        ({"domains": ["api.example.com"]}, "https://evil.io\\@api.example.com/", False),
        ({"domains": ["api.example.com"]}, "ftp://api.example.com/", False),
        ({"domains": ["api.example.com"]}, "https://127.0.0.1/", False),
        ({"domains": ["api.example.com"]}, "https://api.example.com:99999/", False),
        ({"domains": ["api.example.com"]}, "https://API.EXAMPLE.COM./x", True),
        ({"domains": ["api.example.com"]}, "api.example.com", False),
    ],
)
def test_each_per_argument_rule_is_enforced(
    constraint: dict[str, Any], value: Any, ok: bool
) -> None:
    d = one(arg_rule(**constraint), call("t", a=value))
    assert d.allowed is ok, d.reason
    if not ok:
        rule_name = next(iter(constraint))
        assert d.reason.startswith("argument 'a' fails rule ")
        assert rule_name in d.reason or "type" in d.reason
        assert d.reason.endswith("(rule s.tools.rules[0])")


def test_an_absent_constrained_argument_is_not_checked_but_the_schema_can_require_it() -> None:
    assert one(arg_rule(max_length=1), call("t")).allowed


# -- clients -----------------------------------------------------------------------------------


@pytest.mark.guarantee("engine-client-scoped")
def test_a_clients_section_scopes_servers_per_client() -> None:
    servers = [
        {"name": n, "command": ["x"], "tools": {"rules": [{"tool": "*", **LOW_ALLOW}]}}
        for n in ("a", "b")
    ]
    p = make_policy(servers, clients=[{"name": "agent", "servers": ["a"]}])
    assert one(p, call("t", server="a", client="agent")).allowed
    assert one(p, call("t", server="b", client="agent")).kind == "deny"
    assert one(p, call("t", server="a", client="stranger")).kind == "deny"
    assert one(make_policy(servers), call("t", server="b", client="stranger")).allowed


# -- rate limits -------------------------------------------------------------------------------


@pytest.mark.guarantee("engine-rate-limit-bounded")
def test_a_rate_limit_allows_the_burst_then_refills_with_time() -> None:
    engine = DecisionEngine(
        with_rules({"tool": "t", **LOW_ALLOW, "rate_limit": {"rate": 1, "per": 10, "burst": 2}})
    )
    ctx = DecisionContext(now=0)
    kinds = []
    for now in (0, 0, 0, 5, 10, 10, 30):
        d, ctx = engine.decide(call("t"), ctx.model_copy(update={"now": float(now)}))
        kinds.append(d.kind)
    assert kinds == ["allow", "allow", "deny", "deny", "allow", "deny", "allow"]


def test_rate_limits_are_per_client_and_per_tool() -> None:
    engine = DecisionEngine(
        with_rules({"tool": "*", **LOW_ALLOW, "rate_limit": {"rate": 1, "per": 60}})
    )
    ctx = DecisionContext(now=0)
    d1, ctx = engine.decide(call("t", client="a"), ctx)
    d2, ctx = engine.decide(call("t", client="a"), ctx)
    d3, ctx = engine.decide(call("t", client="b"), ctx)
    d4, ctx = engine.decide(call("u", client="a"), ctx)
    assert [d.kind for d in (d1, d2, d3, d4)] == ["allow", "deny", "allow", "allow"]


def test_a_clock_going_backwards_refills_nothing() -> None:
    engine = DecisionEngine(
        with_rules({"tool": "t", **LOW_ALLOW, "rate_limit": {"rate": 1, "per": 10}})
    )
    d1, ctx = engine.decide(call("t"), DecisionContext(now=100))
    d2, ctx = engine.decide(call("t"), ctx.model_copy(update={"now": 0.0}))
    d3, ctx = engine.decide(call("t"), ctx.model_copy(update={"now": 105.0}))
    assert [d.kind for d in (d1, d2, d3)] == ["allow", "deny", "deny"]


def test_the_convenience_decide_matches_the_engine() -> None:
    p = with_rules({"tool": "t", **LOW_ALLOW})
    assert decide(p, call("t"), CTX) == DecisionEngine(p).decide(call("t"), CTX)


# -- properties --------------------------------------------------------------------------------

TOOLS = ["echo", "add", "read_file", "write_file", "printEnv", "x"]
PATTERNS = [*TOOLS, "*", "read_*", "*_file", "e*", "?dd", "*Env"]
RANK = {"deny": 0, "require_approval": 1, "allow": 2}

rule_st = st.one_of(
    st.fixed_dictionaries(
        {
            "tool": st.sampled_from(PATTERNS),
            "action": st.just("allow"),
            "tier": st.sampled_from(["low", "medium"]),
        },
        optional={
            "rate_limit": st.fixed_dictionaries(
                {
                    "rate": st.integers(1, 3),
                    "per": st.sampled_from([1, 10]),
                    "burst": st.integers(1, 3),
                }
            ),
            "arguments": st.just({"rules": {"n": {"enum": [1, 2]}}}),
        },
    ),
    st.fixed_dictionaries(
        {
            "tool": st.sampled_from(PATTERNS),
            "action": st.just("allow"),
            "tier": st.sampled_from(["high", "critical"]),
            "category": st.sampled_from([c.value for c in Category]),
        },
    ),
    st.fixed_dictionaries(
        {
            "tool": st.sampled_from(PATTERNS),
            "action": st.just("approve"),
            "category": st.sampled_from([c.value for c in Category]),
        }
    ),
    st.fixed_dictionaries({"tool": st.sampled_from(PATTERNS), "action": st.just("deny")}),
)
call_st = st.builds(
    lambda tool, n, client, dt: (call(tool, client=client, n=n), dt),
    st.sampled_from([*TOOLS, "unknown_tool"]),
    st.sampled_from([1, 2, 3]),
    st.sampled_from(["a", "b"]),
    st.floats(0, 5),
)


@pytest.mark.guarantee("engine-deny-monotone")
@given(
    rules=st.lists(rule_st, max_size=6),
    deny=st.sampled_from(PATTERNS),
    position=st.integers(0, 6),
    calls=st.lists(call_st, min_size=1, max_size=12),
)
def test_adding_a_deny_rule_never_widens_access(
    rules: list[dict[str, Any]], deny: str, position: int, calls: list[tuple[ToolCall, float]]
) -> None:
    wider = DecisionEngine(with_rules(*rules))
    narrower_rules = list(rules)
    narrower_rules.insert(min(position, len(rules)), {"tool": deny, "action": "deny"})
    narrower = DecisionEngine(with_rules(*narrower_rules))
    cw = cn = DecisionContext(now=0)
    now = 0.0
    for c, dt in calls:
        now += dt
        cw = cw.model_copy(update={"now": now})
        cn = cn.model_copy(update={"now": now})
        dw, cw = wider.decide(c, cw)
        dn, cn = narrower.decide(c, cn)
        assert RANK[dn.kind] <= RANK[dw.kind], (c.tool, dw, dn)


@pytest.mark.guarantee("engine-unknown-denied")
@given(
    rules=st.lists(rule_st, max_size=6),
    server=st.text(min_size=1, max_size=10),
    tool=st.text(min_size=1, max_size=10),
)
def test_unknown_servers_and_unmatched_tools_are_always_denied(
    rules: list[dict[str, Any]], server: str, tool: str
) -> None:
    p = with_rules(*rules)
    if server != "s":
        assert one(p, call(tool, server=server)).kind == "deny"
    from fnmatch import fnmatchcase

    if not any(fnmatchcase(tool, r["tool"]) for r in rules):
        assert one(p, call(tool)).kind == "deny"


@pytest.mark.guarantee("engine-deterministic")
@given(rules=st.lists(rule_st, max_size=6), calls=st.lists(call_st, min_size=1, max_size=8))
def test_decisions_are_deterministic(
    rules: list[dict[str, Any]], calls: list[tuple[ToolCall, float]]
) -> None:
    p = with_rules(*rules)
    runs = []
    for engine in (DecisionEngine(p), DecisionEngine(with_rules(*rules))):
        ctx = DecisionContext(now=0)
        out = []
        for c, dt in calls:
            ctx = ctx.model_copy(update={"now": ctx.now + dt})
            d, ctx = engine.decide(c, ctx)
            out.append((d, ctx))
        runs.append(out)
    assert runs[0] == runs[1]


@pytest.mark.guarantee("engine-rate-limit-bounded")
@given(
    rate=st.integers(1, 20),
    per=st.floats(0.1, 100),
    burst=st.integers(1, 20),
    gaps=st.lists(st.floats(0, 10), min_size=1, max_size=60),
)
def test_a_rate_limit_never_allows_more_than_burst_plus_refill(
    rate: int, per: float, burst: int, gaps: list[float]
) -> None:
    engine = DecisionEngine(
        with_rules(
            {"tool": "t", **LOW_ALLOW, "rate_limit": {"rate": rate, "per": per, "burst": burst}}
        )
    )
    ctx = DecisionContext(now=0.0, rate=RateState())
    times: list[float] = []
    now = 0.0
    for gap in gaps:
        now += gap
        d, ctx = engine.decide(call("t"), ctx.model_copy(update={"now": now}))
        if d.allowed:
            times.append(now)
    # over every window [times[i], times[j]] of allowed calls, the count is bounded
    for i in range(len(times)):
        for j in range(i, len(times)):
            bound = burst + rate * (times[j] - times[i]) / per
            assert j - i + 1 <= bound + 1e-6


def test_rate_state_stays_bounded_under_many_tool_names() -> None:
    from stockade.policy import PRUNE_ABOVE

    engine = DecisionEngine(
        with_rules({"tool": "*", **LOW_ALLOW, "rate_limit": {"rate": 1, "per": 1, "burst": 1}})
    )
    ctx = DecisionContext(now=0)
    for i in range(PRUNE_ABOVE + 50):
        _, ctx = engine.decide(call(f"t{i}"), ctx.model_copy(update={"now": i * 0.01}))
    assert len(ctx.rate.buckets) <= PRUNE_ABOVE + 1
    # pruning lost nothing that mattered: the most recent tool is still limited
    d, _ = engine.decide(call(f"t{PRUNE_ABOVE + 49}"), ctx)
    assert d.kind == "deny"
