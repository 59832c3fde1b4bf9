"""What an image run must look like before the gVisor backend starts it (fail closed).

An image always runs on gVisor with its verified, unpacked rootfs as the read-only root; it gets
no host path. Its allowlisted egress goes through a veth into a namespace that holds only the
run's proxy (``_netns``): when this host cannot build that, the image spec is refused (never run
without the network it was granted).
"""

from __future__ import annotations

import os
import re
import stat

from stockade.errors import SandboxError
from stockade.models import Runtime, SandboxSpec

from ._netns import check_tools
from ._oci import SANDBOX_TMP, SECRETS_DIR

__all__ = ["check_image_spec"]

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def _is_dir(root: str, inside: str) -> bool:
    """A real directory (no symlink anywhere on the way) at ``inside`` under ``root``."""
    path = root
    for part in inside.strip("/").split("/"):
        path = os.path.join(path, part)
        try:
            st = os.lstat(path)
        except OSError:
            return False
        if not stat.S_ISDIR(st.st_mode):
            return False
    return True


def check_image_spec(spec: SandboxSpec) -> None:
    """Refuse an image spec the gVisor backend cannot run exactly as described."""
    if spec.rootfs is None or spec.image_digest is None:
        raise SandboxError(
            "an image run needs both rootfs and image_digest (got one of them)",
            "run the image through stockade run --image, which verifies and unpacks it",
        )
    if not _DIGEST.fullmatch(spec.image_digest):
        raise SandboxError(
            f"image digest {spec.image_digest!r} is not sha256:<64 hex>", "pin the image digest"
        )
    if spec.runtime != Runtime.GVISOR:
        raise SandboxError(
            f"an image was asked to run under {spec.runtime.value}; images run under gvisor only",
            "drop --runtime (images always run on gVisor)",
        )
    if spec.binds:
        raise SandboxError(
            "an image run was given host paths (binds); image runs get no host path",
            "remove --ro/--rw and fs_allowlist for image servers",
        )
    if spec.network.mode == "allowlist":
        check_tools(spec.network.domains)  # refuses: "image runs get no egress on this host"
    if not os.path.isabs(spec.rootfs) or not _is_dir("/", spec.rootfs):
        raise SandboxError(
            f"image rootfs {spec.rootfs!r} is not an existing absolute directory",
            "verify and unpack the image again",
        )
    points = ["/proc", "/dev", SANDBOX_TMP] + ([SECRETS_DIR] if spec.secrets else [])
    missing = [p for p in points if not _is_dir(spec.rootfs, p)]
    if missing:
        raise SandboxError(
            f"the image has no mount point(s) {missing} (got a rootfs without them, expected "
            "directories the read-only root can mount over)",
            "add the empty directories to the image",
        )
