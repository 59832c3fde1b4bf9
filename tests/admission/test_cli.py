"""`stockade admit`: exit codes, --json shape, --only, --level, rules flags, terminal safety."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from ._helpers import restricted_pod, run_cli, setp, stockade_pod

GOOD = ["--registry", "ghcr.io/acme/*"]


def write(tmp_path: Path, name: str, *docs: Any) -> str:
    path = tmp_path / name
    if name.endswith(".json"):
        path.write_text(json.dumps(docs[0] if len(docs) == 1 else list(docs)))
    else:
        path.write_text(yaml.safe_dump_all(docs))
    return str(path)


def test_exit_0_when_every_document_is_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = write(tmp_path, "ok.yaml", stockade_pod(), stockade_pod())
    assert run_cli(["admit", *GOOD, f]) == 0
    out = capsys.readouterr().out
    assert "2 document(s) at level stockade: 2 allowed, 0 denied" in out


def test_exit_1_when_any_document_is_denied(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = setp(stockade_pod(), "spec.runtimeClassName", "runc")
    f = write(tmp_path, "mixed.yaml", stockade_pod(), bad)
    assert run_cli(["admit", *GOOD, f]) == 1
    out = capsys.readouterr().out
    assert "DENY" in out
    assert "stockade_runtimeClass: spec.runtimeClassName" in out
    assert "fix: set spec.runtimeClassName: gvisor" in out


def test_json_output_has_one_object_per_document_in_input_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = setp(restricted_pod(), "spec.hostPID", True)
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}}
    f1 = write(tmp_path, "a.yaml", restricted_pod(), cm, bad)
    f2 = write(tmp_path, "b.json", restricted_pod())
    assert run_cli(["admit", "--json", "--level", "baseline", f1, f2]) == 1
    out = json.loads(capsys.readouterr().out)
    assert [(Path(d["file"]).name, d["index"], d["kind"], d["verdict"]) for d in out] == [
        ("a.yaml", 0, "Pod", "allow"),
        ("a.yaml", 1, "ConfigMap", "allow"),
        ("a.yaml", 2, "Pod", "deny"),
        ("b.json", 0, "Pod", "allow"),
    ]
    assert set(out[0]) == {"file", "index", "kind", "name", "verdict", "violations"}
    assert out[2]["violations"] == [
        {
            "check": "hostNamespaces",
            "path": "spec.hostPID",
            "message": "hostPID=true shares a host namespace",
            "fix": "remove hostPID or set it to false",
        }
    ]
    assert out[0]["name"] == "p"


def test_only_runs_just_the_named_checks_at_any_level(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pod = setp(setp(restricted_pod(), "spec.hostPID", True), "spec.securityContext.runAsUser", 0)
    f = write(tmp_path, "p.yaml", pod)
    assert run_cli(["admit", "--json", "--level", "baseline", "--only", "runAsUser", f]) == 1
    out = json.loads(capsys.readouterr().out)
    assert {v["check"] for v in out[0]["violations"]} == {"runAsUser"}
    assert run_cli(["admit", "--json", "--only", "privileged,sysctls", f]) == 0
    capsys.readouterr()
    assert run_cli(["admit", "--json", "--only", "hostNamespaces, runAsUser", f]) == 1
    out = json.loads(capsys.readouterr().out)
    assert {v["check"] for v in out[0]["violations"]} == {"hostNamespaces", "runAsUser"}


@pytest.mark.parametrize("only", ["nope", "privileged,nope", ",", "PRIVILEGED"])
def test_an_unknown_check_id_is_a_usage_error(
    tmp_path: Path, only: str, capsys: pytest.CaptureFixture[str]
) -> None:
    f = write(tmp_path, "p.yaml", restricted_pod())
    assert run_cli(["admit", "--only", only, f]) == 2
    assert "stockade: error:" in capsys.readouterr().err


def test_an_unknown_level_is_a_usage_error(tmp_path: Path) -> None:
    f = write(tmp_path, "p.yaml", restricted_pod())
    assert run_cli(["admit", "--level", "privileged", f]) == 2


@pytest.mark.guarantee("admit-fail-closed-input")
@pytest.mark.parametrize(
    "content",
    [
        None,  # missing file
        b"a: [1, 2\n",
        b"a: &x 1\nb: *x\n",
        b"kind: Pod\nkind: Pod\n",
        b"\xff\xfe not utf-8",
        b"- just\n- a list\n",
        b"apiVersion: v1\nkind: Mystery\n",
        b"apiVersion: v1\nkind: Pod\nspec:\n  containers:\n"
        b"  - {name: c, securityContext: {privileged: 'true'}}\n",
    ],
)
def test_unreadable_input_exits_2_and_prints_no_verdict(
    tmp_path: Path, content: bytes | None, capsys: pytest.CaptureFixture[str]
) -> None:
    ok = write(tmp_path, "ok.yaml", restricted_pod())
    bad = tmp_path / "bad.yaml"
    if content is not None:
        bad.write_bytes(content)
    assert run_cli(["admit", "--level", "baseline", ok, str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "bad.yaml" in captured.err


@pytest.mark.guarantee("admit-fail-closed-input")
def test_a_file_over_the_size_cap_exits_2(tmp_path: Path) -> None:
    from stockade.admission._load import MAX_BYTES

    big = tmp_path / "big.yaml"
    big.write_bytes(b"# " + b"x" * MAX_BYTES)
    assert run_cli(["admit", str(big)]) == 2


@pytest.mark.guarantee("admit-registry-allowlist")
def test_the_default_level_is_stockade_and_no_registry_flag_denies_every_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = write(tmp_path, "p.yaml", stockade_pod())
    assert run_cli(["admit", "--json", f]) == 1
    out = json.loads(capsys.readouterr().out)
    assert {v["check"] for v in out[0]["violations"]} == {"stockade_registryAllowlist"}


@pytest.mark.guarantee("admit-secrets-granted-only")
def test_allow_secret_grants_exactly_the_named_secret(tmp_path: Path) -> None:
    env = [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "tok", "key": "k"}}}]
    f = write(tmp_path, "p.yaml", setp(stockade_pod(), "spec.containers[0].env", env))
    assert run_cli(["admit", *GOOD, f]) == 1
    assert run_cli(["admit", *GOOD, "--allow-secret", "other", f]) == 1
    assert run_cli(["admit", *GOOD, "--allow-secret", "tok", f]) == 0


def test_an_invalid_registry_pattern_is_a_usage_error(tmp_path: Path) -> None:
    f = write(tmp_path, "p.yaml", stockade_pod())
    assert run_cli(["admit", "--registry", "*", f]) == 2


@pytest.mark.guarantee("admit-terminal-safe")
def test_untrusted_names_and_values_are_neutralised_in_human_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    evil = "x\x1b]0;owned\x07\u202e\x1b[2J"
    pod = setp(restricted_pod(), "metadata.name", evil)
    pod = setp(pod, "spec.containers[0].name", evil)
    pod = setp(pod, "spec.containers[0].securityContext.privileged", True)
    pod = setp(pod, "spec.securityContext.sysctls", [{"name": evil, "value": "1"}])
    f = write(tmp_path, "e\x1b[31m.yaml", pod)
    assert run_cli(["admit", "--level", "baseline", f]) == 1
    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert "\u202e" not in out
    assert "\x07" not in out


@pytest.mark.guarantee("admit-terminal-safe")
def test_json_output_escapes_every_control_character(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pod = setp(restricted_pod(), "metadata.name", "a\x1b[2J\u202eb")
    f = write(tmp_path, "p.yaml", pod)
    assert run_cli(["admit", "--json", "--level", "baseline", f]) == 0
    raw = capsys.readouterr().out
    assert "\x1b" not in raw
    assert "\u202e" not in raw
    assert json.loads(raw)[0]["name"] == "a\x1b[2J\u202eb"


def test_stdin_is_read_with_dash(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io
    import sys

    data = yaml.safe_dump(restricted_pod()).encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    assert run_cli(["admit", "--level", "restricted", "-"]) == 0
    assert "ALLOW -[0] Pod/p" in capsys.readouterr().out


POLICY = """\
version: 1
default: deny
registries: ["ghcr.io/acme/*"]
servers:
  - name: indexer
    image: ghcr.io/acme/indexer@sha256:{digest}
    secrets: [api-token]
"""


@pytest.mark.guarantee("admit-registry-allowlist", "admit-secrets-granted-only")
def test_policy_file_supplies_registries_and_granted_secrets(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.format(digest="c" * 64))
    env = [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "api-token", "key": "k"}}}]
    f = write(tmp_path, "p.yaml", setp(stockade_pod(), "spec.containers[0].env", env))
    assert run_cli(["admit", f]) == 1  # no grants without the policy
    assert run_cli(["admit", "--policy", str(policy), f]) == 0
    other = write(
        tmp_path,
        "o.yaml",
        setp(stockade_pod(), "spec.containers[0].envFrom", [{"secretRef": {"name": "db"}}]),
    )
    assert run_cli(["admit", "--policy", str(policy), other]) == 1


@pytest.mark.guarantee("admit-fail-closed-input")
@pytest.mark.parametrize("content", [None, "version: 1\ndefault: allow\n", "not: [valid"])
def test_an_unreadable_or_invalid_policy_exits_2(tmp_path: Path, content: str | None) -> None:
    policy = tmp_path / "policy.yaml"
    if content is not None:
        policy.write_text(content)
    f = write(tmp_path, "p.yaml", stockade_pod())
    assert run_cli(["admit", "--policy", str(policy), f]) == 2


def test_list_items_are_reported_with_their_item_position(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = setp(restricted_pod(), "spec.hostIPC", True)
    doc = {"apiVersion": "v1", "kind": "List", "items": [restricted_pod(), bad]}
    f = write(tmp_path, "list.json", doc)
    assert run_cli(["admit", "--json", "--level", "baseline", f]) == 1
    out = json.loads(capsys.readouterr().out)
    assert [(d["index"], d["item"], d["verdict"]) for d in out] == [(0, 0, "allow"), (0, 1, "deny")]


def test_only_may_name_a_stockade_check_at_a_pss_level(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = write(tmp_path, "p.yaml", restricted_pod())
    assert (
        run_cli(["admit", "--json", "--level", "baseline", "--only", "stockade_runtimeClass", f])
        == 1
    )
    out = json.loads(capsys.readouterr().out)
    assert [v["check"] for v in out[0]["violations"]] == ["stockade_runtimeClass"]


def test_a_byte_order_mark_is_not_content(tmp_path: Path) -> None:
    yaml_file = tmp_path / "bom.yaml"
    yaml_file.write_bytes(b"\xef\xbb\xbf" + yaml.safe_dump(restricted_pod()).encode())
    json_file = tmp_path / "bom.json"
    json_file.write_bytes(b"\xef\xbb\xbf" + json.dumps(restricted_pod()).encode())
    assert run_cli(["admit", "--level", "restricted", str(yaml_file), str(json_file)]) == 0
