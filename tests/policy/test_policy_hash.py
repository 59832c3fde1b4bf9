"""The effective-policy hash: stable across presentation, sensitive to meaning."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from stockade.policy import canonical_json, parse_policy

FILE = "/nonexistent-stockade-dir/policy.yaml"

DEFAULTS: dict[str, Any] = {
    "kind": "server",
    "runtime": "gvisor",
    "network": "none",
    "fs_allowlist": [],
    "cpu_seconds": 10,
    "memory_mb": 256,
    "pids": 64,
    "timeout_s": 60,
    "tmp_size_mb": 64,
    "secrets": [],
    "env": {},
    "start": "lazy",
    "tofu": False,
}

server_st = st.fixed_dictionaries(
    {
        "name": st.from_regex(r"[a-z][a-z0-9_-]{0,8}", fullmatch=True),
        "command": st.lists(
            st.text(
                st.characters(codec="utf-8", categories=["L", "N", "P", "S", "Zs"]),
                min_size=1,
                max_size=8,
            ),
            min_size=1,
            max_size=3,
        ),
    },
    optional={
        "runtime": st.sampled_from(["gvisor", "namespaces"]),
        "network": st.one_of(
            st.just("none"),
            st.lists(
                st.sampled_from(["api.example.com", "*.example.org", "x.example.net"]),
                min_size=1,
                max_size=3,
                unique=True,
            ),
        ),
        "cpu_seconds": st.integers(1, 3600),
        "memory_mb": st.integers(16, 65536),
        "pids": st.integers(1, 4096),
        "secrets": st.lists(st.sampled_from(["A", "B_TOKEN", "c.key"]), unique=True),
        "env": st.dictionaries(
            st.sampled_from(["MODE", "LANG", "X"]), st.text("abc :\"'é#", max_size=5)
        ),
        "start": st.sampled_from(["lazy", "eager"]),
        "tofu": st.booleans(),
        "tools": st.fixed_dictionaries(
            {
                "rules": st.lists(
                    st.fixed_dictionaries(
                        {
                            "tool": st.sampled_from(["echo", "*", "read_*"]),
                            "action": st.sampled_from(["allow", "deny"]),
                            "tier": st.just("low"),
                        }
                    ),
                    max_size=3,
                )
            }
        ),
    },
)
policy_st = st.fixed_dictionaries(
    {"servers": st.lists(server_st, max_size=3, unique_by=lambda s: s["name"])},
    optional={"approvals": st.fixed_dictionaries({"timeout_s": st.integers(1, 1000)})},
)


def render(doc: dict[str, Any], rnd: random.Random, spell_defaults: bool) -> str:
    """YAML text for ``doc`` with shuffled keys, random style and comments."""

    def shuffle(value: Any) -> Any:
        if isinstance(value, dict):
            items = list(value.items())
            rnd.shuffle(items)
            return {k: shuffle(v) for k, v in items}
        if isinstance(value, list):
            return [shuffle(v) for v in value]
        return value

    full = {"version": 1, "default": "deny", **json.loads(json.dumps(doc))}
    if spell_defaults:
        for s in full["servers"]:
            for k, v in DEFAULTS.items():
                s.setdefault(k, json.loads(json.dumps(v)))
            s.setdefault("tools", {})
            s["tools"].setdefault("default", "deny")
        full.setdefault("approvals", {"timeout_s": 300})
        full.setdefault("registries", [])
    body = yaml.safe_dump(
        shuffle(full),
        sort_keys=False,
        default_flow_style=rnd.choice([False, None, True]),
        indent=rnd.choice([2, 3, 4]),
        width=rnd.choice([40, 80, 1000]),
        allow_unicode=rnd.choice([True, False]),
    )
    return f"# generated policy\n\n{body}\n# end\n"


def hash_of(text: str) -> str:
    r = parse_policy(text, file=FILE)
    assert r.policy is not None, [str(e) for e in r.errors]
    return r.policy.effective_hash


@pytest.mark.guarantee("policy-hash-stable")
@given(doc=policy_st, rnd1=st.randoms(), rnd2=st.randoms())
def test_the_hash_ignores_key_order_whitespace_comments_and_spelled_out_defaults(
    doc: dict[str, Any], rnd1: random.Random, rnd2: random.Random
) -> None:
    minimal = hash_of(render(doc, rnd1, spell_defaults=False))
    spelled = hash_of(render(doc, rnd2, spell_defaults=True))
    assert minimal == spelled


@pytest.mark.guarantee("policy-hash-stable")
@given(doc=policy_st, rnd=st.randoms(), bump=st.integers(1, 10))
def test_the_hash_changes_when_the_effective_policy_changes(
    doc: dict[str, Any], rnd: random.Random, bump: int
) -> None:
    base = hash_of(render(doc, rnd, spell_defaults=False))
    changed = json.loads(json.dumps(doc))
    changed.setdefault("approvals", {"timeout_s": 300})
    changed["approvals"]["timeout_s"] = changed["approvals"]["timeout_s"] % 1000 + bump
    assert hash_of(render(changed, rnd, spell_defaults=False)) != base


@pytest.mark.guarantee("policy-hash-stable")
def test_a_version_0_file_and_its_spelled_out_form_hash_the_same() -> None:
    v0 = "default: deny\nallow:\n  - name: p\n    network: false\n    cpu_seconds: 5\n"
    v0_terse = "allow: [{cpu_seconds: 5.0, name: p}]\ndefault: deny  # comment\n"
    v1 = (
        "version: 1\ndefault: deny\nservers:\n"
        "  - {name: p, kind: plugin, network: none, cpu_seconds: 5, memory_mb: 256}\n"
    )
    assert hash_of(v0) == hash_of(v0_terse) == hash_of(v1)


def test_the_canonical_form_is_compact_sorted_json() -> None:
    r = parse_policy("version: 1\ndefault: deny\n", file=FILE)
    assert r.policy is not None
    data = r.policy.canonical_json()
    assert data == canonical_json(r.policy.doc)
    assert b" " not in data
    assert data == json.dumps(json.loads(data), sort_keys=True, separators=(",", ":")).encode()
