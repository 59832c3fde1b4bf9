"""The loaded, effective policy and its hash."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import Field

from stockade.errors import PolicyError
from stockade.models import Frozen, NetworkProfile

from ._patterns import image_repository, registry_matches
from ._problems import Problem
from ._resolve import Mount
from ._schema import PolicyDoc, ServerPolicy

__all__ = ["Policy", "canonical_json", "effective_hash"]


def canonical_json(doc: PolicyDoc) -> bytes:
    """Sorted keys, no insignificant whitespace, UTF-8: the bytes the effective hash covers."""
    return json.dumps(
        doc.model_dump(mode="json"),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    ).encode("utf-8")


def effective_hash(doc: PolicyDoc) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(doc)).hexdigest()


class Policy(Frozen):
    """A validated policy: the effective document plus what loading resolved on the host.

    ``doc`` is the effective version-1 document (defaults applied, version 0 normalised);
    ``effective_hash`` covers exactly ``doc``. ``mounts`` are host-specific and not hashed.
    """

    doc: PolicyDoc
    file: str = "<memory>"
    source_version: Literal[0, 1] = 1
    effective_hash: str
    mounts: dict[str, tuple[Mount, ...]] = Field(default_factory=dict)
    secret_store_path: str | None = None
    #: key and trusted-root files named under ``signatures`` (path relative to the policy -> text)
    signature_material: dict[str, str] = Field(default_factory=dict)
    warnings: tuple[Problem, ...] = ()

    @classmethod
    def from_doc(cls, doc: PolicyDoc, **kw: Any) -> Policy:
        """Build from an already-validated document (host paths unresolved unless given)."""
        return cls(doc=doc, effective_hash=effective_hash(doc), **kw)

    @property
    def registries(self) -> tuple[str, ...]:
        return self.doc.registries

    @property
    def servers(self) -> tuple[ServerPolicy, ...]:
        return self.doc.servers

    def has_server(self, name: str) -> bool:
        return any(s.name == name for s in self.doc.servers)

    def server(self, name: str) -> ServerPolicy:
        for s in self.doc.servers:
            if s.name == name:
                return s
        raise PolicyError(
            f"server {name!r} is not in policy {self.file}",
            "add a servers: entry for it (unknown servers are always denied)",
        )

    def network(self, server: str) -> NetworkProfile:
        return self.server(server).network.profile

    def mounts_for(self, server: str) -> tuple[Mount, ...]:
        self.server(server)
        return self.mounts.get(server, ())

    def granted_secrets(self, server: str | None = None) -> tuple[str, ...]:
        """Secret names granted to ``server`` (or to any server when ``None``), sorted."""
        if server is not None:
            return self.server(server).secrets
        return tuple(sorted({n for s in self.doc.servers for n in s.secrets}))

    def sensitive_secrets(self) -> tuple[str, ...]:
        """Names whose values the audit redactor must scrub: every granted secret, always."""
        return self.granted_secrets()

    def registry_allows(self, image: str) -> bool:
        """Whether an image reference's repository matches the ``registries`` allowlist."""
        try:
            repo = image_repository(image)[0]
        except ValueError:
            return False
        return any(registry_matches(p, repo) for p in self.doc.registries)

    def canonical_json(self) -> bytes:
        return canonical_json(self.doc)

    def effective(self) -> dict[str, Any]:
        """The effective document as plain JSON data (for ``policy show``)."""
        data: dict[str, Any] = self.doc.model_dump(mode="json")
        return data
