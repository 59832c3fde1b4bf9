"""`stockade image verify-bundle` follows the sigstore-conformance protocol: exit 0 iff valid."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .fakelog import FakeLog, new_p256, public_pem
from .vectors import COSIGN, SIGSTORE, require_vectors

GH_ID = "https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/v0.1.2"
GH_ISSUER = "https://token.actions.githubusercontent.com"
GH_DIGEST = "sha256:c4e92e9ecc828bef2aa7dba1de8ac983511f7532a0df11c770d39099a25cf201"
ROOT = COSIGN / "trust" / "production" / "trusted_root.json"


def stockade(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stockade", "image", "verify-bundle", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def _vectors() -> None:
    require_vectors()


@pytest.mark.usefixtures("_vectors")
@pytest.mark.parametrize("root", [["--trusted-root", str(ROOT)], []])
def test_a_valid_bundle_exits_zero(root: list[str]) -> None:
    bundle = str(SIGSTORE / "bundle_v3_github.whl.sigstore")
    ident = ["--certificate-identity", GH_ID, "--certificate-oidc-issuer", GH_ISSUER]
    r = stockade("--bundle", bundle, *ident, *root, GH_DIGEST)
    assert r.returncode == 0, r.stderr
    assert "OK" in r.stdout


@pytest.mark.usefixtures("_vectors")
@pytest.mark.parametrize(
    "args",
    [
        ["--certificate-identity", "someone@else", "--certificate-oidc-issuer", GH_ISSUER],
        ["--certificate-identity", GH_ID, "--certificate-oidc-issuer", "https://evil"],
    ],
)
def test_a_wrong_identity_exits_non_zero_with_the_failing_step(args: list[str]) -> None:
    bundle = str(SIGSTORE / "bundle_v3_github.whl.sigstore")
    r = stockade("--bundle", bundle, *args, "--trusted-root", str(ROOT), GH_DIGEST)
    assert r.returncode != 0
    assert "step 4 (identity)" in r.stderr


@pytest.mark.usefixtures("_vectors")
def test_the_artifact_may_be_a_file_and_a_wrong_file_fails() -> None:
    bundle = str(SIGSTORE / "bundle_v3_no_signed_time.txt.sigstore.json")
    r = stockade(
        "--bundle",
        bundle,
        "--certificate-identity",
        "william@yossarian.net",
        "--certificate-oidc-issuer",
        "https://github.com/login/oauth",
        "--trusted-root",
        str(ROOT),
        str(SIGSTORE / "bundle_v3_no_signed_time.txt"),
    )
    assert r.returncode != 0
    assert "step 2 (bundle)" in r.stderr


def test_key_mode_verifies_a_key_signed_bundle(tmp_path: Path) -> None:
    log, key = FakeLog(), new_p256()
    artifact = tmp_path / "artifact.txt"
    artifact.write_bytes(b"artifact\n")
    (tmp_path / "b.json").write_bytes(log.key_bundle(artifact.read_bytes(), key))
    (tmp_path / "root.json").write_bytes(log.trusted_root())
    (tmp_path / "k.pub").write_bytes(public_pem(key))
    (tmp_path / "other.pub").write_bytes(public_pem(new_p256()))
    common = ["--bundle", str(tmp_path / "b.json"), "--trusted-root", str(tmp_path / "root.json")]
    ok = stockade(*common, "--key", str(tmp_path / "k.pub"), str(artifact))
    assert ok.returncode == 0, ok.stderr
    bad = stockade(*common, "--key", str(tmp_path / "other.pub"), str(artifact))
    assert bad.returncode != 0
    assert "step 4" in bad.stderr


def test_missing_or_conflicting_verification_material_is_a_usage_error(tmp_path: Path) -> None:
    b = tmp_path / "b.json"
    b.write_text("{}")
    assert stockade("--bundle", str(b), "sha256:" + "0" * 64).returncode == 2
    both = stockade(
        "--bundle", str(b), "--key", str(b), "--certificate-identity", "x", "sha256:" + "0" * 64
    )
    assert both.returncode == 2
    missing = stockade(
        "--bundle", str(b), "--key", str(tmp_path / "nope"), "--trusted-root", str(b), str(b)
    )
    assert missing.returncode != 0
    assert "Traceback" not in missing.stderr


def test_hostile_text_in_errors_is_neutralised(tmp_path: Path) -> None:
    b = tmp_path / "b.json"
    b.write_text("{}")
    r = stockade(
        "--bundle",
        str(b),
        "--certificate-identity",
        "\x1b]0;pwned\x07evil",
        "--certificate-oidc-issuer",
        "x",
        "--trusted-root",
        str(b),
        "sha256:" + "0" * 64,
    )
    assert r.returncode != 0
    assert "\x1b" not in r.stderr
