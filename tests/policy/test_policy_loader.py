"""Loading and validating policies: strict schema, unsafe requests, host paths, version 0."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _policy_helpers import MINIMAL, Writer, messages, valid

from stockade.errors import PolicyError
from stockade.models import Category, NetworkProfile
from stockade.policy import (
    LIMITS,
    MOUNT_FLAGS,
    PolicyLoadError,
    check_policy,
    load_policy,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "policies"


def server(body: str, top: str = "") -> str:
    """A version-1 policy with one server whose extra keys are ``body`` (6-space indented)."""
    lines = "".join(f"    {line}\n" for line in body.splitlines())
    return f"version: 1\ndefault: deny\n{top}servers:\n  - name: s\n    command: [node]\n{lines}"


# -- defaults and the effective model -----------------------------------------------------------


def test_a_minimal_server_gets_every_safe_default(check: Writer) -> None:
    s = valid(check(MINIMAL)).server("s")
    assert s.runtime == "gvisor"
    assert s.network.profile == NetworkProfile()
    assert (s.cpu_seconds, s.memory_mb, s.pids, s.timeout_s, s.tmp_size_mb) == tuple(
        LIMITS[k][0] for k in ("cpu_seconds", "memory_mb", "pids", "timeout_s", "tmp_size_mb")
    )
    assert s.fs_allowlist == ()
    assert s.secrets == ()
    assert s.env == {}
    assert s.start == "lazy"
    assert s.tofu is False
    assert s.tools.default == "deny"
    assert s.tools.rules == ()


@pytest.mark.guarantee("policy-default-deny")
@pytest.mark.parametrize("value", ["allow", "permit", "true", "null"])
def test_default_can_only_be_deny(check: Writer, value: str) -> None:
    r = check(f"version: 1\ndefault: {value}\n")
    assert not r.ok
    assert [(p.line, p.col) for p in r.errors] == [(2, 10)]


@pytest.mark.guarantee("policy-default-deny")
def test_default_allow_is_named_an_unsafe_request(check: Writer) -> None:
    r = check("version: 1\ndefault: allow\n")
    assert messages(r) == [
        "2:10: unsafe request: default: allow (fix: write default: deny and grant each server "
        "explicitly)"
    ]


@pytest.mark.guarantee("policy-default-deny")
def test_tools_default_allow_is_an_unsafe_request(check: Writer) -> None:
    r = check(server("tools:\n  default: allow"))
    assert messages(r) == [
        "7:16: unsafe request: tools default: allow (fix: write default: deny and add allow "
        "rules for the tools you need)"
    ]


def test_missing_default_is_a_missing_mandatory_key(check: Writer) -> None:
    r = check("version: 1\nservers: []\n")
    assert messages(r) == [
        "1:1: missing mandatory key 'default' (fix: add `default: deny` at the top)"
    ]


def test_missing_name_points_at_the_entry(check: Writer) -> None:
    r = check("version: 1\ndefault: deny\nservers:\n  - command: [x]\n")
    assert messages(r) == ["4:5: missing mandatory key 'name' (fix: give the entry a name)"]


@pytest.mark.parametrize(
    ("launch", "expected"),
    [("", "has 0"), ("    image: registry.example.com/t/x:1\n", "has 2")],
)
def test_a_server_needs_exactly_one_of_image_or_command(
    check: Writer, launch: str, expected: str
) -> None:
    text = (
        "version: 1\ndefault: deny\nregistries: [registry.example.com/t/*]\nservers:\n"
        f"  - name: s\n{launch}" + ("    command: [x]\n" if launch else "")
    )
    r = check(text)
    assert any(expected in m for m in messages(r)), messages(r)


@pytest.mark.guarantee("policy-unknown-key-rejected")
@pytest.mark.parametrize(
    ("text", "line", "col", "key"),
    [
        ("version: 1\ndefault: deny\nsevers: []\n", 3, 1, "severs"),
        (server("memry_mb: 5"), 6, 5, "memry_mb"),
        (
            server("tools:\n  rules:\n    - tool: x\n      action: deny\n      why: nope"),
            10,
            11,
            "why",
        ),
        (server("fs_allowlist:\n  - path: data\n    mod: rw"), 8, 9, "mod"),
        (
            "version: 1\ndefault: deny\napprovals:\n  timeout_s: 5\n  on_timeout: allow\n",
            5,
            3,
            "on_timeout",
        ),
    ],
)
def test_unknown_keys_are_reported_at_their_line_and_column(
    check: Writer, text: str, line: int, col: int, key: str
) -> None:
    r = check(text)
    assert [(p.line, p.col, p.message) for p in r.errors] == [(line, col, f"unknown key {key!r}")]


@pytest.mark.guarantee("policy-unknown-key-rejected")
def test_an_unknown_key_close_to_a_known_one_gets_a_suggestion(check: Writer) -> None:
    r = check(server("timeout: 5"))
    assert r.errors[0].fix == "did you mean 'timeout_s'?"


@pytest.mark.guarantee("policy-all-problems-reported")
def test_every_problem_is_reported_not_just_the_first(check: Writer) -> None:
    r = check(
        server(
            "privileged: true\nmemry_mb: 5\ncpu_seconds: '5'\nfs_allowlist: [/etc]\n"
            "env: {API_KEY: x}\nruntime: docker",
            top="registries: [nothost]\n",
        )
    )
    got = messages(r)
    assert len(got) == 7, got
    assert [p.line for p in r.errors] == sorted(p.line for p in r.errors)
    for p in r.errors:
        assert str(p).startswith(f"{r.file}:{p.line}:{p.col}: ")
        assert p.fix


@pytest.mark.guarantee("policy-wrong-type-rejected")
@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("cpu_seconds: '5'", "valid number"),
        ("memory_mb: 256.0", "valid integer"),
        ("memory_mb: true", "valid integer"),
        ("tofu: 1", "valid boolean"),
        ("tofu: 'true'", "valid boolean"),
        ("command: node", "valid"),
        ("env: [A]", "object"),
        ("env: {A: 1}", "valid string"),
        ("runtime: docker", "'gvisor' or 'namespaces'"),
        ("start: now", "'lazy' or 'eager'"),
        ("secrets: GITHUB_TOKEN", "valid"),
    ],
)
def test_wrong_types_are_errors_never_coerced(check: Writer, body: str, fragment: str) -> None:
    text = (
        server(body)
        if not body.startswith("command")
        else ("version: 1\ndefault: deny\nservers:\n  - name: s\n    " + body + "\n")
    )
    r = check(text)
    assert not r.ok
    assert any(fragment in p.message for p in r.errors), messages(r)


@pytest.mark.guarantee("policy-limits-bounded")
@pytest.mark.parametrize("field", sorted(LIMITS))
def test_limits_above_their_hard_maximum_are_rejected(check: Writer, field: str) -> None:
    maximum = LIMITS[field][1]
    assert valid(check(server(f"{field}: {int(maximum)}")))
    r = check(server(f"{field}: {int(maximum) + 1}"))
    assert len(r.errors) == 1
    assert (r.errors[0].line, r.errors[0].col) == (6, 5 + len(field) + 2)
    assert "less than or equal" in r.errors[0].message


@pytest.mark.guarantee("policy-limits-bounded")
@pytest.mark.parametrize("field", sorted(LIMITS))
def test_limits_must_be_positive(check: Writer, field: str) -> None:
    assert not check(server(f"{field}: 0")).ok
    assert not check(server(f"{field}: -1")).ok


# -- unsafe requests -----------------------------------------------------------------------------


@pytest.mark.guarantee("policy-unsafe-request-rejected")
@pytest.mark.parametrize(
    "key",
    [
        "privileged",
        "host_network",
        "host_pid",
        "host_ipc",
        "capabilities",
        "cap_add",
        "devices",
        "security_opt",
        "seccomp",
        "apparmor",
        "no_new_privs",
        "allow_privilege_escalation",
        "read_only_root",
        "user",
        "uid",
        "run_as_root",
        "volumes",
        "mounts",
        "binds",
    ],
)
def test_each_unsafe_request_is_rejected_by_name(check: Writer, key: str) -> None:
    r = check(server(f"{key}: true"))
    assert [(p.line, p.col) for p in r.errors] == [(6, 5)]
    assert r.errors[0].message.startswith(f"unsafe request: {key!r}")
    assert r.errors[0].fix == f"remove {key}"


@pytest.mark.guarantee("policy-unsafe-request-rejected")
@pytest.mark.parametrize("value", ["true", "host", "all", "'*'"])
def test_unrestricted_network_is_an_unsafe_request(check: Writer, value: str) -> None:
    r = check(server(f"network: {value}"))
    assert len(r.errors) == 1
    assert r.errors[0].message.startswith("unsafe request: network")


@pytest.mark.guarantee("policy-network-domains-strict")
@pytest.mark.parametrize(
    "domain",
    [
        "'*'",
        "10.0.0.1",
        "'[::1]'",
        "com",
        "'*.com'",
        "'api.*.example.com'",
        "'a*.example.com'",
        "example.com:443",
        "https://example.com",
        "example.com/x",
        "'exa mple.com'",
        "example.123",
        "'example.com.'",
        "'-bad.example.com'",
    ],
)
def test_bad_egress_domains_are_rejected(check: Writer, domain: str) -> None:
    r = check(server(f"network: [{domain}]"))
    assert not r.ok, domain
    assert r.errors[0].line == 6


@pytest.mark.guarantee("policy-network-domains-strict")
def test_good_egress_domains_are_normalised(check: Writer) -> None:
    s = valid(check(server("network: [API.Example.com, '*.example.org', api.example.com]"))).server(
        "s"
    )
    assert s.network.profile == NetworkProfile(
        mode="allowlist", domains=("*.example.org", "api.example.com")
    )


@pytest.mark.guarantee("policy-no-secret-values")
@pytest.mark.parametrize("key", ["value", "token", "password", "secret", "key"])
def test_a_literal_secret_value_is_rejected(check: Writer, key: str) -> None:
    r = check(server(f"secrets:\n  - name: GITHUB_TOKEN\n    {key}: hunter2"))
    assert [(p.line, p.col) for p in r.errors] == [(8, 9)]
    assert "policies hold names only" in r.errors[0].message
    assert "hunter2" not in str(r.errors[0])


@pytest.mark.guarantee("policy-no-secret-values")
@pytest.mark.parametrize(
    "name",
    [
        "GITHUB_TOKEN",
        "AWS_SECRET_ACCESS_KEY",
        "DB_PASSWORD",
        "API_KEY",
        "OPENAI_APIKEY",
        "AUTH_HEADER",
        "SESSION_COOKIE",
        "my_secret",
        "PRIVATE_PEM",
        "KEY",
    ],
)
def test_credential_looking_env_names_are_rejected_with_a_hint(check: Writer, name: str) -> None:
    r = check(server(f"env: {{{name}: x}}"))
    assert len(r.errors) == 1
    assert "looks like a credential" in r.errors[0].message
    assert "secrets:" in r.errors[0].fix


@pytest.mark.guarantee("policy-no-secret-values")
@pytest.mark.parametrize(
    "value",
    [
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",  # pragma: allowlist secret
        "sk-proj-abc",
        "AKIAABCDEFGHIJKLMNOP",  # pragma: allowlist secret
        "'-----BEGIN RSA PRIVATE KEY-----'",  # pragma: allowlist secret
        "xoxb-123",
    ],
)
def test_credential_looking_env_values_are_rejected(check: Writer, value: str) -> None:
    r = check(server(f"env: {{HARMLESS: {value}}}"))
    assert any("looks like a live credential" in p.message for p in r.errors), messages(r)


@pytest.mark.guarantee("policy-no-secret-values")
@pytest.mark.parametrize("name", ["../x", ".hidden", "a/b", "ghp abc", "a..b"])
def test_secret_names_must_follow_the_store_grammar(check: Writer, name: str) -> None:
    r = check(server(f"secrets: ['{name}']"))
    assert any("not a secret-store name" in p.message for p in r.errors), messages(r)


def test_secrets_accept_names_and_the_name_mapping_shorthand(check: Writer) -> None:
    p = valid(check(server("secrets: [B_TOKEN, {name: A.key}]")))
    assert p.granted_secrets("s") == ("A.key", "B_TOKEN")
    assert p.granted_secrets() == ("A.key", "B_TOKEN")
    assert p.sensitive_secrets() == ("A.key", "B_TOKEN")


@pytest.mark.guarantee("policy-registry-allowlist")
def test_an_image_outside_the_registries_allowlist_is_rejected(check: Writer) -> None:
    text = (
        "version: 1\ndefault: deny\nregistries: [registry.example.com/team/*]\nservers:\n"
        "  - name: ok\n    image: registry.example.com/team/tool@sha256:" + "a" * 64 + "\n"
        "  - name: bad\n    image: registry.example.com/teammate/tool:1\n"
        "  - name: hub\n    image: node:20\n"
    )
    r = check(text)
    assert [(p.line, "not in the registries allowlist" in p.message) for p in r.errors] == [
        (8, True),
        (10, True),
    ]


@pytest.mark.guarantee("policy-registry-allowlist")
@pytest.mark.parametrize(
    "pattern",
    [
        "'*'",
        "registry.example.com",
        "'registry.example.com/*/x'",
        "team/*",
        "'https://registry.example.com/x'",
    ],
)
def test_bad_registry_patterns_are_rejected(check: Writer, pattern: str) -> None:
    assert not check(f"version: 1\ndefault: deny\nregistries: [{pattern}]\n").ok


def test_registry_allows_matches_below_the_prefix_only(check: Writer) -> None:
    p = valid(check("version: 1\ndefault: deny\nregistries: [registry.example.com/team/*]\n"))
    assert p.registry_allows("registry.example.com/team/a/b:1")
    assert not p.registry_allows("registry.example.com/team:1")
    assert not p.registry_allows("registry.example.com/teamx/a")
    assert not p.registry_allows("evil.com/registry.example.com/team/a")
    assert not p.registry_allows("not a ref")


def test_duplicate_server_names_are_rejected(check: Writer) -> None:
    r = check(MINIMAL + "  - name: s\n    command: [x]\n")
    assert [(p.line, p.message) for p in r.errors] == [(6, "server name 's' is used twice")]


def test_namespaces_runtime_is_valid_but_warned(check: Writer) -> None:
    r = check(server("runtime: namespaces"))
    assert r.ok
    assert [(w.line, w.severity) for w in r.warnings] == [(6, "warning")]
    assert "gVisor guarantee is waived" in r.warnings[0].message


def test_tool_rule_arguments_are_checked_at_load_time(check: Writer) -> None:
    r = check(
        server(
            "tools:\n  rules:\n"
            "    - {tool: a, action: allow, tier: low, arguments: {json_schema: {type: nope}}}\n"
            "    - {tool: b, action: allow, tier: low, arguments: {rules: {x: {pattern: '('}}}}\n"
            "    - {tool: c, action: allow, tier: low,\n"
            "       arguments: {rules: {x: {pattern: '(a+)+'}}}}\n"
            "    - {tool: d, action: allow, tier: low, arguments: {rules: {x: {}}}}\n"
            "    - {tool: e, action: allow, tier: low,\n"
            "       arguments: {rules: {x: {path_under: [rel]}}}}\n"
            "    - {tool: f, action: deny, arguments: {rules: {x: {max_length: 1}}}}\n"
            "    - {tool: g, action: approve}\n"
            "    - {tool: h, action: allow}\n"
            "    - {tool: 'has space', action: deny}\n"
        )
    )
    assert [p.line for p in r.errors] == [8, 9, 11, 12, 14, 15, 16, 17, 18], messages(r)


# -- host paths ---------------------------------------------------------------------------------


@pytest.mark.guarantee("policy-fs-no-escape")
@pytest.mark.parametrize("path", ["/etc", "..", "../x", "data/../../x", "/"])
def test_paths_outside_the_policy_directory_are_rejected(check: Writer, path: str) -> None:
    r = check(server(f"fs_allowlist: ['{path}']"))
    assert len(r.errors) == 1
    assert "outside the policy directory" in r.errors[0].message or "escapes" in r.errors[0].message


@pytest.mark.guarantee("policy-fs-no-escape")
def test_an_absolute_path_inside_the_policy_directory_is_accepted(
    check: Writer, tmp_path: Path
) -> None:
    (tmp_path / "data").mkdir()
    p = valid(check(server(f"fs_allowlist: ['{tmp_path}/data/']")))
    assert p.mounts_for("s")[0].source == str((tmp_path / "data").resolve())


@pytest.mark.guarantee("policy-fs-no-symlink-escape")
def test_a_symlink_to_outside_is_rejected(check: Writer, tmp_path: Path) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    try:
        (tmp_path / "link").symlink_to(outside)
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "inner").symlink_to("/etc")
        r = check(
            server("fs_allowlist: [link, link/sub, data/inner, {path: data/inner/x, mode: rw}]")
        )
        assert [(p.col, "through a symlink" in p.message) for p in r.errors] == [
            (20, True),
            (26, True),
            (36, True),
            (48, True),
        ], messages(r)
    finally:
        outside.rmdir()


@pytest.mark.guarantee("policy-fs-no-symlink-escape")
def test_a_symlinked_policy_directory_still_confines_paths_to_the_real_one(
    tmp_path: Path,
) -> None:
    real = tmp_path / "real"
    (real / "data").mkdir(parents=True)
    (tmp_path / "other").mkdir()
    (tmp_path / "alias").symlink_to(real)
    (real / "p.yaml").write_text(server("fs_allowlist: [data, ../other]"))
    r = check_policy(tmp_path / "alias" / "p.yaml")
    assert len(r.errors) == 1
    assert "'../other'" in r.errors[0].message


@pytest.mark.guarantee("policy-fs-no-symlink-escape")
def test_a_symlink_inside_the_directory_is_recorded_resolved_with_mount_flags(
    check: Writer, tmp_path: Path
) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    p = valid(check(server("fs_allowlist: [alias, {path: ./real/, mode: rw}]")))
    m1, m2 = p.mounts_for("s")
    assert (m1.path, m1.source, m1.mode) == ("alias", str((tmp_path / "real").resolve()), "ro")
    assert (m2.path, m2.mode) == ("real", "rw")
    assert m1.flags == m2.flags == MOUNT_FLAGS == ("nosuid", "nodev")
    assert os.path.isabs(m1.source)
    bind = m2.bind("/data")
    assert (bind.source, bind.target, bind.mode) == (m2.source, "/data", "rw")


@pytest.mark.guarantee("policy-fs-protects-policy-and-secrets")
@pytest.mark.parametrize("path", [".", "policy.yaml", "./"])
def test_a_read_write_grant_of_the_policy_file_is_rejected(check: Writer, path: str) -> None:
    r = check(server(f"fs_allowlist: [{{path: '{path}', mode: rw}}]"))
    assert len(r.errors) == 1
    assert "contains the policy file" in r.errors[0].message
    assert check(server(f"fs_allowlist: [{{path: '{path}', mode: ro}}]")).ok


@pytest.mark.guarantee("policy-fs-protects-policy-and-secrets")
@pytest.mark.parametrize("path", [".", "secrets", "secrets/x"])
def test_a_grant_overlapping_the_secret_store_is_rejected(
    check: Writer, tmp_path: Path, path: str
) -> None:
    (tmp_path / "secrets" / "x").mkdir(parents=True)
    r = check(server(f"fs_allowlist: ['{path}']", top="secret_store: secrets/\n"))
    assert len(r.errors) == 1
    assert "secret store" in r.errors[0].message


def test_a_missing_path_is_a_warning(check: Writer) -> None:
    r = check(server("fs_allowlist: [later]"))
    assert r.ok
    assert "does not exist yet" in r.warnings[0].message


# -- version 0 ----------------------------------------------------------------------------------

V0 = """\
default: deny
allow:
  - name: example_safe_plugin
    fs_allowlist: ["data/"]
    network: false
    cpu_seconds: 5
    memory_mb: 256
"""


@pytest.mark.guarantee("policy-v0-compatible")
def test_the_historical_plugin_shape_loads_and_is_normalised(check: Writer, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    r = check(V0)
    p = valid(r)
    assert r.source_version == 0
    assert p.source_version == 0
    assert p.doc.version == 1
    s = p.server("example_safe_plugin")
    assert s.kind == "plugin"
    assert (s.image, s.command) == (None, None)
    assert s.network.profile == NetworkProfile()
    assert s.cpu_seconds == 5.0
    assert s.memory_mb == 256
    assert (s.pids, s.timeout_s, s.tmp_size_mb, s.runtime) == (64, 60, 64, "gvisor")
    assert p.mounts_for("example_safe_plugin")[0].source == str((tmp_path / "data").resolve())


@pytest.mark.guarantee("policy-v0-compatible")
def test_version_0_reports_problems_at_the_allow_entries(check: Writer) -> None:
    r = check(
        V0.replace("network: false", "network: true").replace("memory_mb: 256", "memory_mb: x")
    )
    assert [(p.line, p.col) for p in r.errors] == [(5, 14), (7, 16)], messages(r)
    assert "allow.0.memory_mb" in r.errors[1].message


@pytest.mark.guarantee("policy-v0-compatible")
def test_version_1_keys_in_a_version_0_file_say_to_add_version(check: Writer) -> None:
    r = check(V0 + "servers: []\n")
    assert messages(r) == [
        "8:1: unknown key 'servers' (fix: add `version: 1` at the top to use 'servers')"
    ]
    r = check(V0 + "    image: x\n")
    assert "add `version: 1`" in r.errors[0].fix


@pytest.mark.parametrize("version", ["2", "'1'", "true", "-1", "1.0", "0.0", "null"])
def test_unsupported_versions_are_rejected(check: Writer, version: str) -> None:
    r = check(f"version: {version}\ndefault: deny\n")
    assert [p.message.startswith("unsupported policy version") for p in r.errors] == [True]


# -- load_policy and the examples --------------------------------------------------------------


def test_load_policy_raises_with_every_problem(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text("version: 1\ndefault: allow\nx: 1\n")
    with pytest.raises(PolicyLoadError) as e:
        load_policy(f)
    assert isinstance(e.value, PolicyError)
    assert e.value.problems == (
        f"{f}:2:10: unsafe request: default: allow (fix: write default: deny and grant each "
        "server explicitly)",
        f"{f}:3:1: unknown key 'x' (fix: remove it (see docs/policy.md))",
    )
    assert len(e.value.findings) == 2


def test_load_policy_of_a_missing_file_or_a_directory_raises(tmp_path: Path) -> None:
    with pytest.raises(PolicyLoadError, match="cannot open"):
        load_policy(tmp_path / "missing.yaml")
    with pytest.raises(PolicyLoadError, match="not a regular file"):
        load_policy(tmp_path)


def test_unknown_server_lookup_raises(check: Writer) -> None:
    p = valid(check(MINIMAL))
    with pytest.raises(PolicyError, match="'nope' is not in policy"):
        p.server("nope")


@pytest.mark.parametrize("name", ["plugin-v0.yaml", "everything.yaml"])
def test_every_valid_example_loads(name: str) -> None:
    p = load_policy(EXAMPLES / name)
    assert p.effective_hash.startswith("sha256:")


def test_the_everything_example_has_the_promised_shape() -> None:
    p = load_policy(EXAMPLES / "everything.yaml")
    s = p.server("everything")
    assert s.command is not None
    assert s.command[0] == "node"
    assert s.network.profile == NetworkProfile()
    assert s.runtime == "gvisor"


@pytest.mark.parametrize(
    ("tool", "arguments", "kind", "category"),
    [
        ("echo", {"message": "hi"}, "allow", None),
        ("get-sum", {"a": 1, "b": 2}, "allow", None),
        ("add", {"a": 1, "b": 2}, "allow", None),
        ("get-env", {}, "deny", None),
        ("printEnv", {}, "deny", None),
        ("trigger-sampling-request", {"prompt": "x"}, "require_approval", Category.EXFILTRATION),
        (
            "gzip-file-as-resource",
            {"data": "https://raw.githubusercontent.com/x"},
            "require_approval",
            Category.NEW_NETWORK_DOMAIN,
        ),
        ("gzip-file-as-resource", {"data": "https://evil.example.com/x"}, "deny", None),
        ("trigger-long-running-operation", {"duration": 3}, "deny", None),
        ("trigger-long-running-operation", {"duration": 2, "steps": 2}, "allow", None),
        ("get-tiny-image", {}, "allow", None),
        ("toggle-simulated-logging", {}, "deny", None),
    ],
)
def test_the_everything_example_decides_as_documented(
    tool: str, arguments: dict[str, object], kind: str, category: Category | None
) -> None:
    from stockade.models import ToolCall
    from stockade.policy import DecisionContext, decide

    p = load_policy(EXAMPLES / "everything.yaml")
    c = ToolCall(server="everything", tool=tool, arguments=arguments, client="local-agent")
    d, _ = decide(p, c, DecisionContext(now=0.0))
    assert (d.kind, d.category) == (kind, category), d.reason


@pytest.mark.parametrize(
    "path", sorted((EXAMPLES / "invalid").glob("*.yaml")), ids=lambda p: p.name
)
def test_every_invalid_example_fails_with_its_expected_errors(path: Path) -> None:
    r = check_policy(path)
    assert not r.ok
    got = [str(p).removeprefix(f"{path}:") for p in r.errors]
    expected = path.with_suffix(".expected").read_text().splitlines()
    assert expected
    for line in expected:
        assert any(g.startswith(line) for g in got), (line, got)


def test_approval_categories_are_checked(check: Writer) -> None:
    ok = valid(
        check(
            "version: 1\ndefault: deny\napprovals:\n  categories:\n    financial: {timeout_s: 30}\n"
        )
    )
    assert ok.doc.approvals.timeout_for(Category.FINANCIAL) == 30
    assert ok.doc.approvals.timeout_for(Category.EXFILTRATION) == 300
    r = check("version: 1\ndefault: deny\napprovals:\n  categories:\n    money: {timeout_s: 30}\n")
    assert [(p.line, p.col) for p in r.errors] == [(5, 5)]


def test_clients_must_name_known_servers_once(check: Writer) -> None:
    r = check(
        MINIMAL + "clients:\n  - {name: a, servers: [s, ghost]}\n  - {name: a, servers: [s]}\n"
    )
    assert sorted(p.message for p in r.errors) == [
        "client 'a' is listed twice",
        "client 'a' names unknown servers ['ghost']",
    ]


@pytest.mark.guarantee("policy-wrong-type-rejected")
def test_a_value_matching_no_member_of_a_union_is_one_problem(check: Writer) -> None:
    r = check(
        server(
            "tools:\n  rules:\n    - tool: t\n      action: allow\n      tier: low\n"
            "      arguments: {rules: {a: {enum: [[1], {x: 1}]}}}"
        )
    )
    assert [(p.line, "not one of the accepted types" in p.message) for p in r.errors] == [
        (11, True),
        (11, True),
    ]


@pytest.mark.guarantee("policy-fs-no-symlink-escape")
def test_a_symlinked_policy_file_resolves_paths_beside_the_real_file(tmp_path: Path) -> None:
    (tmp_path / "real" / "data").mkdir(parents=True)
    (tmp_path / "elsewhere" / "data").mkdir(parents=True)
    (tmp_path / "real" / "p.yaml").write_text(server("fs_allowlist: [data]"))
    (tmp_path / "elsewhere" / "p.yaml").symlink_to(tmp_path / "real" / "p.yaml")
    p = load_policy(tmp_path / "elsewhere" / "p.yaml")
    assert p.mounts_for("s")[0].source == str((tmp_path / "real" / "data").resolve())


def test_a_fifo_is_not_read_as_a_policy(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    r = check_policy(tmp_path / "fifo")
    assert [p.message for p in r.errors] == ["not a regular file"]
