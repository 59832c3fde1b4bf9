"""Every case of the public vectors' index.tsv has a test here that asserts its verdict."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from .vectors import COSIGN, SIGSTORE, require_vectors

HERE = Path(__file__).parent

# index.tsv case -> the test (in this folder) that asserts its expected verdict
CASES = {
    "ci/valid": "test_ci_valid_accepts_with_the_signing_key",
    "ci/valid-wrong-key": "test_ci_valid_wrong_key_rejects_at_the_signature_step",
    "ci/valid-wrong-reference": "test_ci_valid_wrong_reference_rejects_at_the_reference_step",
    "ci/valid-2": "test_ci_valid_2_accepts_with_two_valid_signatures",
    "ci/mixed": "test_ci_mixed_accepts_the_good_signature_beside_a_bad_one",
    "ci/modified-manifest": "test_ci_modified_manifest_rejects_on_the_digest",
    "ci/manifest-digest-error": "test_ci_manifest_digest_error_rejects",
    "ci/no-manifest": "test_ci_no_manifest_rejects_for_lack_of_anything_to_bind",
    "ci/other-attachment": "test_ci_other_attachment_is_not_a_signature",
    "ci/valid-with-tag": "test_ci_valid_with_tag_accepts_under_exact_reference_matching",
    "ci/key-rekor-valid": "test_ci_key_rekor_valid_accepts_with_the_set_verified_offline",
    "ci/fulcio-rekor-valid": "test_ci_fulcio_rekor_valid_accepts_checked_at_the_integrated_time",
    "ci/pki-valid": "test_pki_certificates_verify_against_configured_roots_and_intermediates",
    "ci/unknown-key": "test_unknown_key_signature_rejects",
    "ci/rekor-unit": "test_rekor_unit_vector_set_verifies_and_binds_the_signature",
    "cosign/oci-attestation": "test_cosign_oci_attestation_accepts_for_its_subject_digest",
    "cosign/payload-format": "test_payload_format_vector_is_emitted_byte_for_byte",
    "sp/github-wheel": "test_sp_github_wheel_accepts_offline_by_digest",
    "sp/no-signed-time": "test_sp_malformed_bundles_reject",
    "sp/no-cert": "test_sp_malformed_bundles_reject",
    "sp/cpython-3.12.5": "test_sp_cpython_bundle_without_checkpoint_rejects_offline",
}


def _cases(index: Path) -> set[str]:
    rows = [r for r in index.read_text().splitlines() if r and not r.startswith("#")]
    return {r.split("\t")[0] for r in rows[1:]}


def _tests() -> set[str]:
    names: set[str] = set()
    for f in HERE.glob("test_*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                names.add(node.name)
    return names


@pytest.mark.parametrize("index", [COSIGN / "index.tsv", SIGSTORE / "index.tsv"])
def test_every_vector_case_is_covered_by_a_named_test(index: Path) -> None:
    require_vectors()
    cases = _cases(index)
    assert cases, f"{index} lists no cases"
    missing = sorted(cases - set(CASES))
    assert not missing, f"vector cases without a test: {missing}"
    absent = sorted({CASES[c] for c in cases} - _tests())
    assert not absent, f"mapped tests that do not exist: {absent}"
