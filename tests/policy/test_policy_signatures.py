"""The ``signatures`` section: keys by file, keyless identities, trusted root, digest, bases."""

from __future__ import annotations

from pathlib import Path

import pytest
from _policy_helpers import Writer, messages, valid
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

ROOT_JSON = '{"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1"}\n'


def _pub() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _doc(signatures: str, verify: str = "[team]") -> str:
    return (
        "version: 1\n"
        "default: deny\n"
        "registries: [registry.example.com/team/*]\n"
        "signatures:\n"
        f"{signatures}"
        "servers:\n"
        "  - name: s\n"
        "    image: registry.example.com/team/app@sha256:" + "a" * 64 + "\n"
        f"    verify: {verify}\n"
    )


KEYED = "  rules:\n    - name: team\n      keys: [keys/team.pub]\n"


@pytest.fixture
def keydir(tmp_path: Path) -> Path:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "team.pub").write_bytes(_pub())
    (tmp_path / "trusted_root.json").write_text(ROOT_JSON)
    return tmp_path


@pytest.mark.guarantee("policy-signatures-section")
def test_a_key_rule_loads_the_key_file_relative_to_the_policy(check: Writer, keydir: Path) -> None:
    policy = valid(check(_doc(KEYED)))
    assert policy.doc.signatures.require_digest is True
    assert policy.doc.signatures.rules[0].keys == ("keys/team.pub",)
    assert "BEGIN PUBLIC KEY" in policy.signature_material["keys/team.pub"]
    assert policy.server("s").verify == ("team",)


@pytest.mark.guarantee("policy-signatures-section")
def test_a_missing_key_file_is_an_error_at_its_line(check: Writer, tmp_path: Path) -> None:
    result = check(_doc(KEYED))
    assert not result.ok
    (problem,) = [p for p in result.errors if "keys/team.pub" in p.message]
    assert problem.line == 7  # the keys: line
    assert "cannot read key file" in problem.message


@pytest.mark.guarantee("policy-signatures-section")
def test_a_key_file_that_is_not_a_public_key_is_an_error(check: Writer, keydir: Path) -> None:
    (keydir / "keys" / "team.pub").write_text("-----BEGIN PUBLIC KEY-----\nAAAA\n")
    result = check(_doc(KEYED))
    assert any("not a PEM public key" in m for m in messages(result))


@pytest.mark.guarantee("policy-signatures-section")
@pytest.mark.parametrize("path", ["/etc/keys/team.pub", "../team.pub", "keys/../../x.pub"])
def test_a_key_path_outside_the_policy_directory_is_refused(
    check: Writer, keydir: Path, path: str
) -> None:
    result = check(_doc(f"  rules:\n    - name: team\n      keys: [{path!r}]\n"))
    assert not result.ok
    assert any("absolute" in m or "escapes" in m for m in messages(result))


@pytest.mark.guarantee("policy-signatures-section")
def test_a_symlinked_key_resolving_outside_is_refused(check: Writer, keydir: Path) -> None:
    outside = keydir.parent / f"{keydir.name}-outside.pub"
    outside.write_bytes(_pub())
    (keydir / "keys" / "link.pub").symlink_to(outside)
    result = check(_doc("  rules:\n    - name: team\n      keys: [keys/link.pub]\n"))
    assert any("outside the policy directory" in m for m in messages(result))


@pytest.mark.guarantee("policy-unknown-key-rejected")
@pytest.mark.parametrize(
    "section",
    [
        "  rules:\n    - name: team\n      keys: [keys/team.pub]\n      keyz: 1\n",
        "  rulez: []\n",
        "  rules:\n    - name: team\n      identities:\n        - subject: a\n          issuer: b\n"
        "          sub: c\n  trusted_root: trusted_root.json\n",
    ],
)
def test_unknown_keys_in_the_section_are_errors(check: Writer, keydir: Path, section: str) -> None:
    result = check(_doc(section))
    assert any("unknown key" in m for m in messages(result)), messages(result)
    assert all(p.line > 0 for p in result.errors)


@pytest.mark.guarantee("policy-signatures-section")
def test_keyless_identities_load_with_exact_and_regex_forms(check: Writer, keydir: Path) -> None:
    section = (
        "  trusted_root: trusted_root.json\n"
        "  rules:\n"
        "    - name: team\n"
        "      identities:\n"
        "        - subject: https://github.com/org/repo/.github/workflows/release.yml@refs/heads/main\n"
        "          issuer: https://token.actions.githubusercontent.com\n"
        "        - subject_regex: 'https://github\\.com/org/.*'\n"
        "          issuer_regex: 'https://token\\.actions\\.githubusercontent\\.com'\n"
    )
    policy = valid(check(_doc(section)))
    ids = policy.doc.signatures.rules[0].identities
    assert ids[1].subject_regex == "https://github\\.com/org/.*"
    assert "trusted_root.json" in policy.signature_material


@pytest.mark.guarantee("policy-signatures-section")
def test_a_regex_that_does_not_compile_is_an_error(check: Writer, keydir: Path) -> None:
    section = (
        "  trusted_root: trusted_root.json\n"
        "  rules:\n    - name: team\n      identities:\n"
        "        - subject_regex: 'https://(unclosed'\n          issuer: https://issuer\n"
    )
    result = check(_doc(section))
    assert any("does not compile" in m for m in messages(result)), messages(result)


@pytest.mark.guarantee("policy-signatures-section")
@pytest.mark.parametrize(
    ("identity", "expect"),
    [
        ("        - subject: a\n", "exactly one of issuer"),
        ("        - issuer: b\n", "exactly one of subject"),
        ("        - subject: a\n          subject_regex: a\n          issuer: b\n", "subject"),
    ],
)
def test_an_identity_needs_one_subject_and_one_issuer(
    check: Writer, keydir: Path, identity: str, expect: str
) -> None:
    section = (
        "  trusted_root: trusted_root.json\n  rules:\n    - name: team\n      identities:\n"
        + identity
    )
    assert any(expect in m for m in messages(check(_doc(section))))


@pytest.mark.guarantee("policy-signatures-section")
def test_keyless_without_a_trusted_root_is_an_error(check: Writer, keydir: Path) -> None:
    section = "  rules:\n    - name: team\n      identities:\n        - {subject: a, issuer: b}\n"
    assert any("trusted root" in m for m in messages(check(_doc(section))))


@pytest.mark.guarantee("policy-signatures-section")
def test_a_missing_trusted_root_file_is_an_error(check: Writer, keydir: Path) -> None:
    (keydir / "trusted_root.json").unlink()
    section = (
        "  trusted_root: trusted_root.json\n"
        "  rules:\n    - name: team\n      identities:\n        - {subject: a, issuer: b}\n"
    )
    result = check(_doc(section))
    (problem,) = [p for p in result.errors if "trusted root" in p.message]
    assert problem.line == 5


@pytest.mark.guarantee("policy-signatures-section")
def test_a_rule_with_both_or_neither_kind_is_an_error(check: Writer, keydir: Path) -> None:
    both = (
        "  trusted_root: trusted_root.json\n  rules:\n    - name: team\n"
        "      keys: [keys/team.pub]\n"
        "      identities:\n        - {subject: a, issuer: b}\n"
    )
    neither = "  rules:\n    - name: team\n"
    for section in (both, neither):
        assert any("exactly one kind" in m for m in messages(check(_doc(section))))


@pytest.mark.guarantee("policy-signatures-section")
def test_verify_naming_an_unknown_rule_is_an_error(check: Writer, keydir: Path) -> None:
    result = check(_doc(KEYED, verify="[nobody]"))
    assert any("unknown signature rule 'nobody'" in m for m in messages(result))


@pytest.mark.guarantee("image-server-without-rule-refused")
def test_an_image_server_without_verify_is_warned_as_always_refused(
    check: Writer, keydir: Path
) -> None:
    result = check(_doc(KEYED, verify="[]"))
    policy = valid(result)
    assert policy.server("s").verify == ()
    assert any("every run of it is refused" in w.message for w in result.warnings)


@pytest.mark.guarantee("policy-signatures-section")
def test_require_digest_and_approved_bases_are_typed(check: Writer, keydir: Path) -> None:
    section = KEYED + (
        "  require_digest: false\n"
        "  approved_bases:\n    - name: registry.example.com/base/distroless\n"
        "      digest: sha256:" + "b" * 64 + "\n"
    )
    policy = valid(check(_doc(section)))
    assert policy.doc.signatures.require_digest is False
    assert policy.doc.signatures.approved_bases[0].digest == "sha256:" + "b" * 64
    bad = KEYED + "  require_digest: 'no'\n"
    assert not check(_doc(bad)).ok
    bad_base = KEYED + "  approved_bases:\n    - {name: x/y, digest: latest}\n"
    assert any("sha256:<64 hex>" in m for m in messages(check(_doc(bad_base))))


@pytest.mark.guarantee("policy-signatures-section")
def test_duplicate_rule_names_are_an_error(check: Writer, keydir: Path) -> None:
    section = KEYED + "    - name: team\n      keys: [keys/team.pub]\n"
    assert any("used twice" in m for m in messages(check(_doc(section))))


def test_the_signed_image_example_loads_with_its_key() -> None:
    from stockade.policy import load_policy

    example = Path(__file__).parents[2] / "examples" / "policies" / "signed-image" / "policy.yaml"
    policy = load_policy(example)
    assert policy.server("hello").verify == ("team",)
    assert "BEGIN PUBLIC KEY" in policy.signature_material["keys/cosign.pub"]
