"""Every public Sigstore bundle vector gives its expected verdict, verified offline."""

from __future__ import annotations

import pytest

from stockade.supplychain import (
    IdentityMatcher,
    SignatureVerificationError,
    TrustMaterialError,
    verify_attestation_bundle,
    verify_bundle,
)

from .vectors import COSIGN, SIGSTORE, require_vectors

pytestmark = pytest.mark.usefixtures("_vectors")

ROOT = COSIGN / "trust" / "production" / "trusted_root.json"
GH_ID = "https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/v0.1.2"
GH_ISSUER = "https://token.actions.githubusercontent.com"
GH_DIGEST = "sha256:c4e92e9ecc828bef2aa7dba1de8ac983511f7532a0df11c770d39099a25cf201"
ATTEST_DIGEST = "sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4"


@pytest.fixture
def _vectors() -> None:
    require_vectors()


def ident(subject: str, issuer: str) -> tuple[IdentityMatcher, ...]:
    return (IdentityMatcher(subject=subject, issuer=issuer),)


def test_sp_github_wheel_accepts_offline_by_digest() -> None:
    ev = verify_bundle(
        (SIGSTORE / "bundle_v3_github.whl.sigstore").read_bytes(),
        GH_DIGEST,
        identities=ident(GH_ID, GH_ISSUER),
        trusted_root=ROOT.read_bytes(),
    )
    assert (ev.subject, ev.issuer, ev.artifact_digest) == (GH_ID, GH_ISSUER, GH_DIGEST)
    assert ev.log_index > 0


def test_identity_regexes_are_anchored_at_both_ends() -> None:
    bundle = (SIGSTORE / "bundle_v3_github.whl.sigstore").read_bytes()
    ok = (IdentityMatcher(subject_regex=r"https://github\.com/trailofbits/.*", issuer=GH_ISSUER),)
    assert verify_bundle(bundle, GH_DIGEST, identities=ok, trusted_root=ROOT.read_bytes())
    for unanchored in (r"github\.com/trailofbits/.*", r"https://github\.com/trailofbits/"):
        bad = (IdentityMatcher(subject_regex=unanchored, issuer=GH_ISSUER),)
        with pytest.raises(SignatureVerificationError, match=r"step 4 \(identity\)"):
            verify_bundle(bundle, GH_DIGEST, identities=bad, trusted_root=ROOT.read_bytes())


@pytest.mark.guarantee("image-reject-wrong-identity")
@pytest.mark.parametrize(
    ("subject", "issuer"),
    [(GH_ID, "https://accounts.google.com"), (GH_ID + "x", GH_ISSUER)],
)
def test_sp_github_wheel_rejects_another_identity_or_issuer(subject: str, issuer: str) -> None:
    with pytest.raises(SignatureVerificationError, match=r"step 4 \(identity\)"):
        verify_bundle(
            (SIGSTORE / "bundle_v3_github.whl.sigstore").read_bytes(),
            GH_DIGEST,
            identities=ident(subject, issuer),
            trusted_root=ROOT.read_bytes(),
        )


def test_sp_github_wheel_rejects_another_artifact() -> None:
    with pytest.raises(SignatureVerificationError, match=r"step 3"):
        verify_bundle(
            (SIGSTORE / "bundle_v3_github.whl.sigstore").read_bytes(),
            "sha256:" + "0" * 64,
            identities=ident(GH_ID, GH_ISSUER),
            trusted_root=ROOT.read_bytes(),
        )


@pytest.mark.parametrize(
    ("bundle", "artifact", "subject", "issuer", "reason"),
    [
        (
            "bundle_v3_no_signed_time.txt.sigstore.json",
            "bundle_v3_no_signed_time.txt",
            "william@yossarian.net",
            "https://github.com/login/oauth",
            "inclusion promise or signed timestamp",
        ),
        ("bundle_no_cert_v1.txt.sigstore", "bundle_no_cert_v1.txt", "x", "y", "certificate"),
    ],
)
def test_sp_malformed_bundles_reject(
    bundle: str, artifact: str, subject: str, issuer: str, reason: str
) -> None:
    with pytest.raises(SignatureVerificationError, match=r"step 2 \(bundle\)") as err:
        verify_bundle(
            (SIGSTORE / bundle).read_bytes(),
            (SIGSTORE / artifact).read_bytes(),
            identities=ident(subject, issuer),
            trusted_root=ROOT.read_bytes(),
        )
    assert reason in err.value.what


def test_sp_cpython_bundle_without_checkpoint_rejects_offline() -> None:
    with pytest.raises(SignatureVerificationError, match="checkpoint"):
        verify_bundle(
            (SIGSTORE / "Python-3.12.5.tgz.sigstore").read_bytes(),
            "sha256:38dc4e2c261d49c661196066edbfb70fdb16be4a79cc8220c224dfeb5636d405",
            identities=ident("thomas@python.org", "https://accounts.google.com"),
            trusted_root=ROOT.read_bytes(),
        )


@pytest.mark.parametrize(
    "root", ["cosign-repo/trusted_root_pgi.json", "trust/production/trusted_root.json"]
)
def test_cosign_oci_attestation_accepts_for_its_subject_digest(root: str) -> None:
    ev, payload = verify_attestation_bundle(
        (COSIGN / "cosign-repo" / "oci-attestation.sigstore.json").read_bytes(),
        ATTEST_DIGEST,
        identities=ident("cody@soyland.com", "https://github.com/login/oauth"),
        trusted_root=(COSIGN / root).read_bytes(),
    )
    assert ev.kind == "dsse"
    assert ev.log_index == 175508996
    assert b"_type" in payload


def test_cosign_oci_attestation_rejects_another_image_digest_or_subject_regex() -> None:
    bundle = (COSIGN / "cosign-repo" / "oci-attestation.sigstore.json").read_bytes()
    with pytest.raises(SignatureVerificationError, match=r"step 5 \(statement\)"):
        verify_attestation_bundle(
            bundle,
            "sha256:" + "1" * 64,
            identities=ident("cody@soyland.com", "https://github.com/login/oauth"),
            trusted_root=ROOT.read_bytes(),
        )
    wrong = (IdentityMatcher(subject_regex="wrong", issuer="https://github.com/login/oauth"),)
    with pytest.raises(SignatureVerificationError, match=r"step 4"):
        verify_attestation_bundle(
            bundle, ATTEST_DIGEST, identities=wrong, trusted_root=ROOT.read_bytes()
        )


@pytest.mark.guarantee("image-missing-trust-material")
def test_a_missing_or_unreadable_trusted_root_refuses() -> None:
    with pytest.raises(TrustMaterialError, match=r"step 1 \(trusted root\)"):
        verify_bundle(
            (SIGSTORE / "bundle_v3_github.whl.sigstore").read_bytes(),
            GH_DIGEST,
            identities=ident(GH_ID, GH_ISSUER),
            trusted_root=b"{}",
        )
