"""``signatures.rules[].provenance`` and ``signatures.require_sbom``: typed, strict, located."""

from __future__ import annotations

from pathlib import Path

import pytest
from _policy_helpers import Writer, messages, valid
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

BUILDER = "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/g.yml@v2"


def _doc(provenance: str, extra: str = "") -> str:
    return (
        "version: 1\n"
        "default: deny\n"
        "registries: [registry.example.com/team/*]\n"
        "signatures:\n"
        f"{extra}"
        "  rules:\n"
        "    - name: team\n"
        "      keys: [keys/team.pub]\n"
        f"{provenance}"
        "servers:\n"
        "  - name: s\n"
        "    image: registry.example.com/team/app@sha256:" + "a" * 64 + "\n"
        "    verify: [team]\n"
    )


@pytest.fixture
def keydir(tmp_path: Path) -> Path:
    (tmp_path / "keys").mkdir()
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "keys" / "team.pub").write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return tmp_path


@pytest.mark.guarantee("image-provenance-run-gate")
def test_a_rule_with_exact_provenance_and_require_sbom_loads_typed(
    check: Writer, keydir: Path
) -> None:
    prov = f"      provenance:\n        builder: '{BUILDER}'\n        source: https://github.com/acme/tool\n"
    policy = valid(check(_doc(prov, "  require_sbom: true\n")))
    sig = policy.doc.signatures
    assert sig.require_sbom is True
    assert sig.rules[0].provenance is not None
    assert sig.rules[0].provenance.builder == BUILDER
    assert sig.rules[0].provenance.source_regex is None


def test_require_sbom_defaults_to_false_and_provenance_to_none(check: Writer, keydir: Path) -> None:
    policy = valid(check(_doc("")))
    assert policy.doc.signatures.require_sbom is False
    assert policy.doc.signatures.rules[0].provenance is None


@pytest.mark.guarantee("image-provenance-run-gate")
@pytest.mark.parametrize(
    ("body", "expect"),
    [
        ("        source: https://x\n", "exactly one of builder"),
        (f"        builder: '{BUILDER}'\n", "exactly one of source"),
        (
            f"        builder: '{BUILDER}'\n        builder_regex: '.*'\n        source: s\n",
            "exactly one of builder",
        ),
        ("        builder_regex: '(unclosed'\n        source: s\n", "does not compile"),
        ("        builder: ''\n        source: s\n", "empty or has control"),
        ("        builder: b\n        source: s\n        sauce: t\n", "sauce"),
    ],
)
def test_a_malformed_provenance_is_an_error_at_its_line(
    check: Writer, keydir: Path, body: str, expect: str
) -> None:
    result = check(_doc("      provenance:\n" + body))
    assert not result.ok
    hits = [p for p in result.errors if expect in p.message]
    assert hits, messages(result)
    assert all(p.line is not None and p.line >= 9 for p in hits)  # at/under provenance:


def test_require_sbom_must_be_a_boolean(check: Writer, keydir: Path) -> None:
    result = check(_doc("", "  require_sbom: maybe\n"))
    assert not result.ok
    assert any("require_sbom" in m or "bool" in m for m in messages(result)), messages(result)


def test_the_provenance_example_loads_with_its_regex_builder_and_sbom_rule() -> None:
    from stockade.policy import load_policy

    example = (
        Path(__file__).parents[2] / "examples" / "policies" / "signed-image" / "provenance.yaml"
    )
    policy = load_policy(example)
    sig = policy.doc.signatures
    assert sig.require_sbom is True
    prov = sig.rules[0].provenance
    assert prov is not None
    assert prov.builder_regex is not None
    assert prov.source == "https://github.com/acme/hello"
    assert policy.server("hello").verify == ("team",)


def test_the_new_fields_at_their_defaults_leave_the_effective_hash_unchanged(
    check: Writer, keydir: Path
) -> None:
    import json

    policy = valid(check(_doc("")))
    doc = json.loads(policy.canonical_json())
    assert "require_sbom" not in doc["signatures"]
    assert "provenance" not in doc["signatures"]["rules"][0]
    with_prov = valid(
        check(_doc("      provenance: {builder: b, source: s}\n", "  require_sbom: true\n"))
    )
    assert with_prov.effective_hash != policy.effective_hash
    assert json.loads(with_prov.canonical_json())["signatures"]["require_sbom"] is True


def _server_doc(server_extra: str, verify: str = "    verify: [team]\n") -> str:
    return (
        "version: 1\n"
        "default: deny\n"
        "registries: [registry.example.com/team/*]\n"
        "signatures:\n"
        "  rules:\n"
        "    - name: team\n"
        "      keys: [keys/team.pub]\n"
        "servers:\n"
        "  - name: s\n"
        "    image: registry.example.com/team/app@sha256:" + "a" * 64 + "\n"
        f"{verify}"
        f"{server_extra}"
    )


@pytest.mark.guarantee("image-provenance-run-gate")
def test_a_server_may_require_provenance_for_its_own_image(check: Writer, keydir: Path) -> None:
    policy = valid(
        check(_server_doc("    provenance: {builder_regex: 'https://ci/.*', source: s}\n"))
    )
    prov = policy.server("s").provenance
    assert prov is not None
    assert prov.builder_regex == "https://ci/.*"
    plain = valid(check(_server_doc("")))
    assert "provenance" not in plain.canonical_json().decode()


@pytest.mark.guarantee("image-provenance-run-gate")
def test_a_server_provenance_without_a_verify_rule_is_an_error_at_its_line(
    check: Writer, keydir: Path
) -> None:
    result = check(_server_doc("    provenance: {builder: b, source: s}\n", verify=""))
    assert not result.ok
    (problem,) = [p for p in result.errors if "provenance: but no verify" in p.message]
    assert problem.line == 11


def test_a_malformed_server_provenance_is_an_error(check: Writer, keydir: Path) -> None:
    result = check(_server_doc("    provenance: {builder: b}\n"))
    assert any("exactly one of source" in m for m in messages(result)), messages(result)
