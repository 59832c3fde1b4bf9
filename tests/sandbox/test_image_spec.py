"""check_image_spec: what an image spec must look like before gVisor starts it (no runsc needed)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from stockade.errors import SandboxError
from stockade.models import Bind, NetworkProfile, Runtime, SandboxSpec
from stockade.sandbox import check_image_spec

DIGEST = "sha256:" + "a" * 64


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    for d in ("proc", "dev", "tmp", "bin"):
        (tmp_path / "rootfs" / d).mkdir(parents=True)
    return tmp_path / "rootfs"


def _spec(root: Path, **kw: object) -> SandboxSpec:
    fields: dict[str, object] = {
        "argv": ("/bin/true",),
        "image_digest": DIGEST,
        "rootfs": str(root),
    }
    return SandboxSpec.model_validate({**fields, **kw})


@pytest.mark.guarantee("sandbox-image-gvisor-only")
def test_a_complete_gvisor_image_spec_passes(rootfs: Path) -> None:
    check_image_spec(_spec(rootfs))


@pytest.mark.guarantee("sandbox-image-gvisor-only")
@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"runtime": Runtime.NAMESPACES}, "gvisor only"),
        ({"binds": (Bind(source="/srv", target="/srv", mode="ro"),)}, "no host path"),
        ({"image_digest": None}, "both rootfs and image_digest"),
        ({"image_digest": "sha256:short"}, "sha256:<64 hex>"),
        ({"rootfs": "relative/root"}, "absolute directory"),
        ({"secrets": ("TOKEN",)}, "/run/secrets"),
    ],
)
def test_an_image_spec_the_backend_cannot_honour_is_refused(
    rootfs: Path, change: dict[str, object], reason: str
) -> None:
    with pytest.raises(SandboxError, match=reason.replace("(", r"\(")):
        check_image_spec(_spec(rootfs, **change))


@pytest.mark.guarantee("sandbox-image-root")
def test_a_rootfs_without_mount_points_or_with_a_symlinked_one_is_refused(rootfs: Path) -> None:
    (rootfs / "tmp").rmdir()
    with pytest.raises(SandboxError, match="mount point"):
        check_image_spec(_spec(rootfs))
    (rootfs / "tmp").symlink_to("/tmp")
    with pytest.raises(SandboxError, match="mount point"):
        check_image_spec(_spec(rootfs))


@pytest.mark.guarantee("sandbox-image-egress")
def test_an_image_spec_with_an_allowlist_passes_where_its_egress_namespaces_can_be_built(
    rootfs: Path,
) -> None:
    check_image_spec(_spec(rootfs, network=NetworkProfile(mode="allowlist", domains=("a.test",))))


@pytest.mark.guarantee("sandbox-image-no-egress")
def test_an_image_spec_with_an_allowlist_is_refused_where_the_mechanism_is_missing(
    rootfs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = shutil.which

    def which(name: str, mode: int = os.F_OK | os.X_OK, path: str | None = None) -> str | None:
        return None if name == "nsenter" else real(name, mode, path)

    monkeypatch.setattr(shutil, "which", which)
    spec = _spec(rootfs, network=NetworkProfile(mode="allowlist", domains=("a.test", "b.test")))
    with pytest.raises(SandboxError, match="image runs get no egress on this host") as e:
        check_image_spec(spec)
    assert "a.test, b.test" in e.value.what
    assert "nsenter" in e.value.what
