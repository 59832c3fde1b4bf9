"""The few cluster calls stockade makes, behind a Protocol (the adapter is ``_client.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from ._render import Manifest

__all__ = ["ClusterApi", "ObjRef", "ref_of"]


@dataclass(frozen=True, order=True)
class ObjRef:
    """Which object: apiVersion, kind, namespace ('' when cluster-scoped) and name."""

    api_version: str
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"


def ref_of(obj: Manifest) -> ObjRef:
    meta: dict[str, Any] = obj.get("metadata", {})
    return ObjRef(obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"])


class ClusterApi(Protocol):
    """Reads return plain dicts (as the API server returns them) or None when absent.

    Every method raises :class:`KubeError` on any API failure (never returns a guess).
    """

    def get(self, ref: ObjRef) -> Manifest | None: ...

    def create(self, obj: Manifest) -> None: ...

    def replace(self, obj: Manifest) -> None: ...

    def delete(self, ref: ObjRef) -> None: ...

    def daemonset_names(self, namespace: str) -> tuple[str, ...]: ...

    def run_ids(self, namespace: str) -> frozenset[str]:
        """The ``stockade.dev/run-id`` labels of the Pods in ``namespace``."""
        ...
