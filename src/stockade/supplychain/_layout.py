"""A local content-addressed OCI image layout store (``oci-layout``, ``index.json``, ``blobs/``).

Blobs are written only after their digest and size are checked, through a temporary file renamed
into place, so the store never holds a blob under a name its bytes do not hash to.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from ._errors import RegistryError

__all__ = ["OciLayoutStore"]

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
REF_ANNOTATION = "org.opencontainers.image.ref.name"


class OciLayoutStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        layout = root / "oci-layout"
        if not layout.exists():
            layout.write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
        if not (root / "index.json").exists():
            self._write_index({"schemaVersion": 2, "manifests": []})

    def blob_path(self, digest: str) -> Path:
        if not _DIGEST.fullmatch(digest):
            raise RegistryError(f"got digest {digest[:80]!r}, expected sha256:<64 hex>", "")
        return self.root / "blobs" / "sha256" / digest.removeprefix("sha256:")

    def has_blob(self, digest: str, size: int | None = None) -> bool:
        path = self.blob_path(digest)
        if not path.is_file():
            return False
        return size is None or path.stat().st_size == size

    def verify_blob(self, digest: str) -> bool:
        """Re-hash a stored blob (detects tampering at rest)."""
        h = hashlib.sha256()
        with self.blob_path(digest).open("rb") as f:
            for chunk in iter(lambda: f.read(1024 * 1024), b""):
                h.update(chunk)
        return "sha256:" + h.hexdigest() == digest

    def put_blob(self, digest: str, data: bytes) -> Path:
        got = "sha256:" + hashlib.sha256(data).hexdigest()
        if got != digest:
            raise RegistryError(f"blob hashes to {got}, expected {digest}", "refuse the image")
        path = self.blob_path(digest)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o444)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return path

    def _write_index(self, doc: dict[str, Any]) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".index-")
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=2)
        os.replace(tmp, self.root / "index.json")

    def index(self) -> dict[str, Any]:
        doc = json.loads((self.root / "index.json").read_text())
        if not isinstance(doc, dict):
            raise RegistryError("index.json is not an object", "remove the corrupt store")
        return doc

    def tag(self, name: str, digest: str, media_type: str, size: int) -> None:
        doc = self.index()
        kept = [
            m
            for m in doc.get("manifests", [])
            if m.get("annotations", {}).get(REF_ANNOTATION) != name
        ]
        kept.append(
            {
                "mediaType": media_type,
                "digest": digest,
                "size": size,
                "annotations": {REF_ANNOTATION: name},
            }
        )
        doc["manifests"] = kept
        self._write_index(doc)
