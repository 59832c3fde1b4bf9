"""Safe YAML: every dangerous or ambiguous construct is refused with its position."""

from __future__ import annotations

import pytest
import yaml
from _policy_helpers import Writer, messages

from stockade.policy import MAX_BYTES, MAX_DEPTH, parse_policy
from stockade.policy import _yaml as policy_yaml


@pytest.fixture(autouse=True, params=["libyaml", "pure-python"])
def yaml_parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test here runs with libyaml's parser and with PyYAML's pure-Python fallback."""
    if request.param == "libyaml":
        if not hasattr(yaml, "CSafeLoader"):
            pytest.skip("libyaml is not available: only the pure-Python parser is tested")
        monkeypatch.setattr(policy_yaml, "_Loader", yaml.CSafeLoader)
    else:
        monkeypatch.setattr(policy_yaml, "_Loader", yaml.SafeLoader)


@pytest.mark.guarantee("policy-safe-yaml")
def test_malformed_yaml_is_reported_with_its_position(check: Writer) -> None:
    r = check("version: 1\ndefault: deny\nservers: [\n  - name: x\n")
    assert not r.ok
    assert len(r.errors) == 1
    assert r.errors[0].message.startswith("malformed YAML")
    assert r.errors[0].line >= 3


@pytest.mark.guarantee("policy-safe-yaml")
def test_alias_bomb_is_refused_at_the_first_anchor_without_expanding(check: Writer) -> None:
    lines = ["version: 1", "default: deny", 'a0: &a0 ["lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 30):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    r = check("\n".join(lines) + "\n")
    assert messages(r) == [
        "3:5: YAML anchors (&a0) are not allowed (fix: remove the anchor and write each value "
        "out in full)"
    ]


@pytest.mark.guarantee("policy-safe-yaml")
def test_an_alias_without_anchor_is_refused(check: Writer) -> None:
    r = check("version: 1\ndefault: *x\n")
    assert not r.ok
    assert "alias" in r.errors[0].message or "malformed" in r.errors[0].message


@pytest.mark.guarantee("policy-safe-yaml")
def test_merge_keys_are_refused(check: Writer) -> None:
    r = check("version: 1\ndefault: deny\nx:\n  <<: {a: 1}\n")
    assert any("merge keys" in m for m in messages(r))


@pytest.mark.guarantee("policy-safe-yaml")
@pytest.mark.parametrize(
    "value",
    ["!!python/object/apply:os.system ['id']", "!custom x", "!!str deny", "!!binary aGk="],
)
def test_explicit_tags_are_refused(check: Writer, value: str) -> None:
    r = check(f"version: 1\ndefault: {value}\n")
    assert [(p.line, p.col) for p in r.errors] == [(2, 10)]
    assert "tags" in r.errors[0].message


@pytest.mark.guarantee("policy-safe-yaml")
def test_a_file_over_the_size_cap_is_refused_before_parsing(check: Writer) -> None:
    r = check("version: 1\ndefault: deny\n#" + "x" * MAX_BYTES + "\n")
    assert len(r.errors) == 1
    assert "over the" in r.errors[0].message


@pytest.mark.guarantee("policy-safe-yaml")
@pytest.mark.parametrize("opener", ["[", "{a: "])
def test_deep_nesting_is_refused(check: Writer, opener: str) -> None:
    depth = 100_000
    closer = "]" if opener == "[" else "}"
    r = check("x: " + opener * depth + "1" + closer * depth + "\n")
    assert len(r.errors) == 1
    assert f"deeper than {MAX_DEPTH}" in r.errors[0].message


@pytest.mark.guarantee("policy-safe-yaml")
def test_nesting_up_to_the_cap_parses(check: Writer) -> None:
    nested = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    r = check(f"version: 1\ndefault: deny\nx: {nested}\n")
    assert all("deeper" not in m for m in messages(r))


@pytest.mark.guarantee("policy-safe-yaml")
def test_duplicate_keys_are_refused_naming_both_lines(check: Writer) -> None:
    r = check("version: 1\ndefault: deny\nservers: []\ndefault: deny\n")
    assert messages(r) == [
        "4:1: duplicate key 'default' (first at line 2) (fix: keep one of them; YAML would "
        "silently keep only the last)"
    ]


@pytest.mark.guarantee("policy-safe-yaml")
@pytest.mark.parametrize("key", ["1", "true", "null", "[a, b]", "{a: 1}", "? [x]"])
def test_non_string_keys_are_refused(check: Writer, key: str) -> None:
    text = (
        f"version: 1\ndefault: deny\n{key}: x\n"
        if not key.startswith("?")
        else (f"version: 1\ndefault: deny\n{key}\n: x\n")
    )
    r = check(text)
    assert any("keys must be plain strings" in m for m in messages(r))


@pytest.mark.guarantee("policy-safe-yaml")
def test_multiple_documents_are_refused(check: Writer) -> None:
    r = check("version: 1\ndefault: deny\n---\nversion: 1\ndefault: deny\n")
    assert len(r.errors) == 1
    assert "single document" in r.errors[0].message
    assert r.errors[0].line == 3


@pytest.mark.guarantee("policy-safe-yaml")
@pytest.mark.parametrize(
    "scalar",
    [
        "yes",
        "no",
        "on",
        "off",
        "0777",
        "0x1F",
        "1:30",
        ".inf",
        ".nan",
        "2001-12-14",
        "1_000",
        "True",
    ],
)
def test_ambiguous_yaml_1_1_scalars_are_refused(check: Writer, scalar: str) -> None:
    r = check(f"version: 1\ndefault: deny\nservers:\n  - name: s\n    tofu: {scalar}\n")
    assert any(m.startswith("5:11: ambiguous YAML scalar") for m in messages(r)), messages(r)


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n"])
def test_an_empty_document_is_an_error(check: Writer, text: str) -> None:
    r = check(text)
    assert [p.message for p in r.errors] == ["the document is empty"]


def test_a_top_level_list_is_an_error() -> None:
    r = parse_policy("- a\n- b\n", file="p.yaml")
    assert [p.message for p in r.errors] == ["the policy must be a mapping"]


def test_non_utf8_is_an_error() -> None:
    r = parse_policy(b"default: \xff\xfe\n", file="p.yaml")
    assert "not UTF-8" in r.errors[0].message


def test_quoted_scalars_stay_strings(check: Writer) -> None:
    r = check('version: 1\ndefault: deny\nservers:\n  - name: "yes"\n    command: ["0777"]\n')
    assert r.ok, messages(r)
    assert r.policy is not None
    assert r.policy.servers[0].name == "yes"
    assert r.policy.servers[0].command == ("0777",)


@pytest.mark.guarantee("policy-safe-yaml")
@pytest.mark.parametrize(
    "text",
    [
        'version: 1\ndefault: deny\nservers:\n  - name: s\n    command: ["rm\\u202e"]\n',
        'version: 1\ndefault: deny\n"x\\u200b": 1\n',
        'version: 1\ndefault: deny\nservers:\n  - name: s\n    command: ["a\\e[2Jb"]\n',
        'version: 1\ndefault: deny\nservers:\n  - name: s\n    command: ["a\\x00"]\n',
    ],
)
def test_hidden_and_control_characters_in_policy_text_are_refused(check: Writer, text: str) -> None:
    r = check(text)
    assert any("hidden or control characters" in m for m in messages(r)), messages(r)


def test_newlines_and_tabs_in_block_text_are_fine(check: Writer) -> None:
    r = check(
        "version: 1\ndefault: deny\nservers:\n  - name: s\n    command:\n      - |\n"
        "        line one\n        \tline two\n"
    )
    assert r.ok, messages(r)
