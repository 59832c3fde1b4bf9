"""SLSA provenance must name the image digest and the policy's builder and source repository."""

from __future__ import annotations

import json

import pytest

from stockade.supplychain import ProvenanceError, ProvenancePolicy, check_provenance

DIGEST = "sha256:" + "7" * 64
BUILDER = (
    "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/x.yml@refs/tags/v2"
)
REPO = "https://github.com/acme/tool"
POLICY = ProvenancePolicy(builder_id=BUILDER, source_repository=REPO)


def v1(**over: object) -> bytes:
    doc: dict[str, object] = {
        "_type": "https://in-toto.io/Statement/v1",
        "predicateType": "https://slsa.dev/provenance/v1",
        "subject": [{"name": "ghcr.io/acme/tool", "digest": {"sha256": DIGEST[7:]}}],
        "predicate": {
            "buildDefinition": {
                "externalParameters": {"workflow": {"repository": REPO, "ref": "refs/tags/v1"}}
            },
            "runDetails": {"builder": {"id": BUILDER}},
        },
    }
    doc.update(over)
    return json.dumps(doc).encode()


def v02(uri: str = f"git+{REPO}@refs/tags/v1") -> bytes:
    return json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v0.1",
            "predicateType": "https://slsa.dev/provenance/v0.2",
            "subject": [{"name": "x", "digest": {"sha256": DIGEST[7:]}}],
            "predicate": {"builder": {"id": BUILDER}, "invocation": {"configSource": {"uri": uri}}},
        }
    ).encode()


@pytest.mark.guarantee("image-provenance")
@pytest.mark.parametrize("statement", [v1(), v02()])
def test_matching_provenance_v1_and_v02_passes(statement: bytes) -> None:
    assert check_provenance(statement, digest=DIGEST, policy=POLICY).builder_id == BUILDER


@pytest.mark.guarantee("image-provenance")
@pytest.mark.parametrize(
    ("statement", "reason"),
    [
        (v1(subject=[{"digest": {"sha256": "8" * 64}}]), "subjects"),
        (v1(predicateType="https://cosign.sigstore.dev/attestation/v1"), "predicateType"),
        (v1(_type="https://example/other"), "_type"),
        (v1(predicate={"runDetails": {"builder": {"id": "https://evil/builder"}}}), "builder"),
        (v02("git+https://github.com/acme/tool-fork@refs/tags/v1"), "source"),
        (v02("git+https://github.com/evil/tool"), "source"),
        (b"not json", "not JSON"),
    ],
)
def test_other_subjects_builders_sources_or_shapes_are_denied(
    statement: bytes, reason: str
) -> None:
    with pytest.raises(ProvenanceError, match=reason):
        check_provenance(statement, digest=DIGEST, policy=POLICY)
