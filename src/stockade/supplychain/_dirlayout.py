"""Read an image in the ``dir:`` layout (as ``skopeo copy ... dir:PATH`` writes it).

``manifest.json`` holds the manifest bytes (their sha256 is the image digest); each
``signature-N`` file holds one signature: the prefix ``\\x00sigstore-json\\n`` and a JSON object
``{"mimeType", "payload" (base64), "annotations"}``. Anything else is refused (fail closed).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from ._cosign import SignatureLayer
from ._crypto import b64decode_strict
from ._errors import RegistryError, TrustMaterialError

__all__ = ["DirImage", "parse_signature_blob", "read_dir_image"]

_PREFIX = b"\x00sigstore-json\n"
_SIG_NAME = re.compile(r"signature-([1-9][0-9]{0,3})(?:\.containers-image-raw)?")
MAX_MANIFEST = 4 * 1024 * 1024
MAX_SIGNATURE = 256 * 1024
MAX_SIGNATURES = 64


class DirImage:
    def __init__(self, manifest: bytes, signatures: tuple[SignatureLayer, ...]) -> None:
        self.manifest = manifest
        self.signatures = signatures

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.manifest).hexdigest()


def _read_capped(path: Path, cap: int) -> bytes:
    with path.open("rb") as f:
        data = f.read(cap + 1)
    if len(data) > cap:
        raise RegistryError(
            f"{path.name} is larger than {cap} bytes", "this is not a normal image; refuse it"
        )
    return data


def parse_signature_blob(name: str, raw: bytes) -> SignatureLayer:
    fix = "re-copy the image with its signatures (skopeo copy --preserve-signatures)"
    if not raw.startswith(_PREFIX):
        raise RegistryError(f"{name}: got an unknown signature format, expected sigstore-json", fix)
    try:
        doc = json.loads(raw[len(_PREFIX) :])
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RegistryError(f"{name}: signature is not JSON", fix) from None
    if not isinstance(doc, dict):
        raise RegistryError(f"{name}: signature is not a JSON object", fix)
    media_type, payload, annotations = (
        doc.get("mimeType"),
        doc.get("payload"),
        doc.get("annotations"),
    )
    if annotations is None:
        annotations = {}
    if not (
        isinstance(media_type, str)
        and isinstance(payload, str)
        and isinstance(annotations, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in annotations.items())
    ):
        raise RegistryError(f"{name}: malformed signature fields", fix)
    try:
        body = b64decode_strict(payload, f"{name} payload")
    except TrustMaterialError as e:
        raise RegistryError(e.what, fix) from None
    return SignatureLayer(media_type=media_type, payload=body, annotations=annotations)


def read_dir_image(path: Path) -> DirImage:
    """The manifest and signatures of the image at ``path``; no manifest means refuse."""
    manifest_path = path / "manifest.json"
    if not manifest_path.is_file():
        raise RegistryError(
            f"{path}: no manifest.json, so there is nothing to bind a signature to",
            "copy the whole image (manifest and signatures) into the directory",
        )
    manifest = _read_capped(manifest_path, MAX_MANIFEST)
    found: list[tuple[int, SignatureLayer]] = []
    for entry in sorted(path.iterdir()):
        m = _SIG_NAME.fullmatch(entry.name)
        if m is None or not entry.is_file():
            continue
        blob = _read_capped(entry, MAX_SIGNATURE)
        found.append((int(m[1]), parse_signature_blob(entry.name, blob)))
        if len(found) > MAX_SIGNATURES:
            raise RegistryError(f"{path}: more than {MAX_SIGNATURES} signatures", "refuse it")
    found.sort(key=lambda t: t[0])
    return DirImage(manifest, tuple(layer for _, layer in found))
