"""Kubernetes names, labels and per-run identifiers derived from stockade values (pure)."""

from __future__ import annotations

import hashlib
import re

from ._errors import KubeError

__all__ = [
    "LABEL_MANAGED",
    "LABEL_ROLE",
    "LABEL_RUN",
    "LABEL_SERVER",
    "PREFIX",
    "check_namespace",
    "check_run_id",
    "namespace_for",
    "run_fs_group",
    "slug",
]

PREFIX = "stockade.dev"
LABEL_RUN = f"{PREFIX}/run-id"
LABEL_SERVER = f"{PREFIX}/server"
LABEL_ROLE = f"{PREFIX}/role"
LABEL_MANAGED = "app.kubernetes.io/managed-by"

_RUN_ID = re.compile(r"[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?")
_DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")

#: fsGroups are drawn from [FS_GROUP_BASE, FS_GROUP_BASE + FS_GROUP_SPAN): far above the
#: workload uid/gid (65532) and below the 2^31 limit of the API.
FS_GROUP_BASE = 1_000_000
FS_GROUP_SPAN = 1_000_000_000


def check_run_id(run_id: str) -> str:
    """A run id that is valid as a label value and inside object names (1-40 chars)."""
    if not _RUN_ID.fullmatch(run_id):
        raise KubeError(
            f"run id {run_id[:60]!r} is not usable in Kubernetes names (expected 1-40 lowercase "
            "letters, digits or '-', starting and ending with a letter or digit)",
            "pass --run-id with a lowercase hex id, or omit it to generate one",
        )
    return run_id


def slug(name: str, limit: int = 40) -> str:
    """A DNS label for a policy name; a short hash keeps distinct names distinct."""
    low = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:limit].strip("-")
    if low == name and low:
        return low
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{low}-{digest}" if low else digest


def namespace_for(server: str) -> str:
    """The namespace stockade renders for a policy server (one per server)."""
    return f"stockade-{slug(server)}"


def check_namespace(name: str) -> str:
    if not _DNS_LABEL.fullmatch(name):
        raise KubeError(
            f"namespace {name[:80]!r} is not a DNS label (got {len(name)} characters, expected "
            "1-63 lowercase letters, digits or '-')",
            "pass --namespace with a valid name, or omit it",
        )
    return name


def run_fs_group(run_id: str) -> int:
    """A per-run group id: the only group (besides root) that can read the run's secret files."""
    h = int.from_bytes(hashlib.sha256(f"stockade-fsgroup:{run_id}".encode()).digest()[:8], "big")
    return FS_GROUP_BASE + h % FS_GROUP_SPAN
