"""check_image_spec: what an image spec must look like before gVisor starts it (no runsc needed)."""

from __future__ import annotations

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
        ({"network": NetworkProfile(mode="allowlist", domains=("a.example",))}, "network"),
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
