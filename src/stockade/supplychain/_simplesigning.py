"""Cosign's simple-signing payload: parse it strictly, and emit it byte-for-byte as cosign does."""

from __future__ import annotations

import json
from typing import Any

from stockade.models import Frozen

from ._errors import SignatureVerificationError

__all__ = [
    "COSIGN_SIGNATURE_TYPE",
    "SIMPLESIGNING_MEDIA_TYPE",
    "SimpleSigningPayload",
    "make_payload",
    "parse_payload",
]

SIMPLESIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
COSIGN_SIGNATURE_TYPE = "cosign container image signature"
MAX_PAYLOAD = 64 * 1024


class SimpleSigningPayload(Frozen):
    docker_reference: str
    manifest_digest: str
    optional: dict[str, Any] | None = None


def _fail(step: str, got: str, expected: str) -> SignatureVerificationError:
    return SignatureVerificationError(f"{step}: got {got}, expected {expected}")


def parse_payload(step: str, payload: bytes) -> SimpleSigningPayload:
    if len(payload) > MAX_PAYLOAD:
        raise _fail(step, f"a {len(payload)}-byte payload", f"at most {MAX_PAYLOAD} bytes")
    try:
        doc = json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _fail(step, "a payload that is not JSON", "a simple-signing JSON document") from None
    critical = doc.get("critical") if isinstance(doc, dict) else None
    if not isinstance(critical, dict):
        raise _fail(step, "no 'critical' object", "critical{identity,image,type}")
    kind = critical.get("type")
    if kind != COSIGN_SIGNATURE_TYPE:
        raise _fail(step, f"payload type {kind!r}", repr(COSIGN_SIGNATURE_TYPE))
    image = critical.get("image")
    identity = critical.get("identity")
    digest = image.get("docker-manifest-digest") if isinstance(image, dict) else None
    reference = identity.get("docker-reference") if isinstance(identity, dict) else None
    if not isinstance(digest, str):
        raise _fail(step, "no critical.image.docker-manifest-digest", "the signed digest")
    if not isinstance(reference, str):
        raise _fail(step, "no critical.identity.docker-reference", "the signed reference")
    optional = doc.get("optional")
    if optional is not None and not isinstance(optional, dict):
        raise _fail(step, f"optional of type {type(optional).__name__}", "an object or null")
    return SimpleSigningPayload(
        docker_reference=reference, manifest_digest=digest, optional=optional
    )


def make_payload(docker_reference: str, manifest_digest: str) -> bytes:
    """The exact bytes cosign signs: compact JSON, keys in cosign's order, ``optional: null``."""
    doc = {
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": manifest_digest},
            "type": COSIGN_SIGNATURE_TYPE,
        },
        "optional": None,
    }
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
