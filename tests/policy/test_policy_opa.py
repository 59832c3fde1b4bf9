"""The policy's opa: section: strict schema, module files read and compiled at load time."""

from __future__ import annotations

from pathlib import Path

import pytest
from _policy_helpers import MINIMAL, Writer, messages, valid

from stockade.policy import check_policy, effective_hash

DENY_ONE = """\
package stockade.tool_call

default decision := {"result": "allow"}

decision := {"result": "deny", "reason": "mallory may not fetch"} if {
    input.client == "mallory"
    input.tool == "fetch"
}
"""


def _write(tmp_path: Path, opa: str, module: str | None = DENY_ONE) -> Path:
    (tmp_path / "rego").mkdir(exist_ok=True)
    if module is not None:
        (tmp_path / "rego" / "authz.rego").write_text(module, encoding="utf-8")
    f = tmp_path / "policy.yaml"
    f.write_text(MINIMAL + opa, encoding="utf-8")
    return f


def test_a_regopy_section_with_a_compiling_module_loads(tmp_path: Path) -> None:
    f = _write(tmp_path, "opa:\n  mode: regopy\n  modules: [rego/authz.rego]\n")
    policy = valid(check_policy(f))
    assert policy.doc.opa is not None
    assert policy.doc.opa.delegate == ("tool_call",)
    assert policy.doc.opa.delegates("tool_call")
    assert not policy.doc.opa.delegates("secret_access")


def test_the_operator_turning_opa_off_delegates_nothing(tmp_path: Path) -> None:
    f = _write(tmp_path, "opa:\n  enabled: false\n  mode: regopy\n  modules: [rego/authz.rego]\n")
    opa = valid(check_policy(f)).doc.opa
    assert opa is not None
    assert not opa.delegates("tool_call")


@pytest.mark.guarantee("cp-opa-policy-load")
def test_a_module_that_does_not_compile_is_a_load_error_with_its_line(tmp_path: Path) -> None:
    f = _write(
        tmp_path,
        "opa:\n  mode: regopy\n  modules: [rego/authz.rego]\n",
        module="package stockade.tool_call\n\ndecision := {{{ nope\n",
    )
    result = check_policy(f)
    assert not result.ok
    (problem,) = [p for p in result.errors if "compile" in p.message]
    assert problem.line == 8  # the modules: line


def test_a_missing_module_is_a_load_error(tmp_path: Path) -> None:
    f = _write(tmp_path, "opa:\n  mode: regopy\n  modules: [rego/absent.rego]\n")
    assert any("cannot read" in m for m in messages(check_policy(f)))


@pytest.mark.parametrize("path", ["../x.rego", "/etc/x.rego", "rego/authz.txt", "a\\b.rego"])
def test_a_module_outside_the_policy_directory_or_not_rego_is_refused(
    tmp_path: Path, path: str
) -> None:
    f = _write(tmp_path, f"opa:\n  mode: regopy\n  modules: ['{path}']\n")
    assert not check_policy(f).ok


@pytest.mark.guarantee("cp-opa-policy-load")
def test_a_symlinked_module_escaping_the_directory_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.rego"
    outside.write_text(DENY_ONE, encoding="utf-8")
    pdir = tmp_path / "p"
    pdir.mkdir()
    f = _write(pdir, "opa:\n  mode: regopy\n  modules: [rego/link.rego]\n", module=None)
    (pdir / "rego" / "link.rego").symlink_to(outside)
    assert any("outside the policy directory" in m for m in messages(check_policy(f)))


@pytest.mark.guarantee("cp-opa-policy-load")
def test_an_unknown_key_in_opa_is_an_error_at_its_line(check: Writer) -> None:
    result = check(MINIMAL + "opa:\n  mode: url\n  url: https://opa.example\n  fallback: builtin\n")
    assert not result.ok
    assert any(p.line == 9 and "fallback" in p.message for p in result.errors), messages(result)


@pytest.mark.parametrize(
    "url",
    [
        "http://opa.example",
        "http://127.0.0.1.evil.example",
        "https://user:pw@opa.example",  # pragma: allowlist secret
        "ftp://127.0.0.1",
        "file:///opa",
    ],
)
@pytest.mark.guarantee("cp-opa-policy-load")
def test_an_opa_url_that_is_neither_https_nor_loopback_is_refused(check: Writer, url: str) -> None:
    assert not check(MINIMAL + f"opa:\n  mode: url\n  url: '{url}'\n").ok


@pytest.mark.parametrize("url", ["https://opa.example:8181", "http://127.0.0.1:8181"])
def test_https_and_loopback_urls_are_accepted(check: Writer, url: str) -> None:
    valid(check(MINIMAL + f"opa:\n  mode: url\n  url: '{url}'\n"))


@pytest.mark.parametrize(
    "section",
    [
        "opa:\n  mode: url\n",
        "opa:\n  mode: regopy\n",
        "opa:\n  mode: url\n  url: https://o.example\n  delegate: []\n",
        "opa:\n  mode: url\n  url: https://o.example\n  delegate: [everything]\n",
        "opa:\n  mode: url\n  url: https://o.example\n  delegate: [task, task]\n",
        "opa:\n  mode: url\n  url: https://o.example\n  timeout_s: 0\n",
        "opa:\n  mode: url\n  url: https://o.example\n  timeout_s: 600\n",
        "opa:\n  mode: url\n  url: https://o.example\n  prefix: 'a b'\n",
    ],
)
def test_incomplete_or_unsafe_opa_sections_are_refused(check: Writer, section: str) -> None:
    assert not check(MINIMAL + section).ok


def test_every_documented_question_can_be_delegated(check: Writer) -> None:
    qs = "[tool_call, task, server_access, secret_access, delegation, data_access]"
    opa = valid(check(MINIMAL + f"opa:\n  mode: url\n  url: https://o.example\n  delegate: {qs}\n"))
    assert opa.doc.opa is not None
    assert len(opa.doc.opa.delegate) == 6


def test_a_policy_without_opa_keeps_its_hash_and_an_opa_section_changes_it(check: Writer) -> None:
    plain = valid(check(MINIMAL))
    assert "opa" not in plain.doc.model_dump(mode="json")
    with_opa = valid(check(MINIMAL + "opa:\n  mode: url\n  url: https://o.example\n"))
    assert effective_hash(plain.doc) != effective_hash(with_opa.doc)
