"""Read the parts of a Sigstore ``trusted_root.json`` that tag-based cosign verification needs."""

from __future__ import annotations

import json
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ._crypto import PublicKey, b64decode_strict, load_public_key
from ._errors import TrustMaterialError

__all__ = ["TrustedRootMaterial", "read_trusted_root"]

MAX_TRUSTED_ROOT = 1024 * 1024


class TrustedRootMaterial:
    """Rekor keys, and Fulcio CA certificates as PEM (roots and intermediates)."""

    def __init__(
        self,
        rekor_keys: tuple[PublicKey, ...],
        rekor_pems: tuple[str, ...],
        fulcio_roots: tuple[str, ...],
        fulcio_intermediates: tuple[str, ...],
    ) -> None:
        self.rekor_keys = rekor_keys
        self.rekor_pems = rekor_pems
        self.fulcio_roots = fulcio_roots
        self.fulcio_intermediates = fulcio_intermediates


def _bad(what: str) -> TrustMaterialError:
    return TrustMaterialError(
        f"trusted root: {what}", "pass the trusted_root.json of your Sigstore instance"
    )


def read_trusted_root(raw: bytes) -> TrustedRootMaterial:
    if len(raw) > MAX_TRUSTED_ROOT:
        raise _bad(f"got {len(raw)} bytes, expected at most {MAX_TRUSTED_ROOT}")
    try:
        doc: Any = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _bad("got a file that is not JSON, expected trusted_root.json") from None
    if not isinstance(doc, dict) or not str(doc.get("mediaType", "")).startswith(
        "application/vnd.dev.sigstore.trustedroot+json"
    ):
        raise _bad("got an unknown mediaType, expected a Sigstore trusted root")
    keys: list[PublicKey] = []
    pems: list[str] = []
    roots: list[str] = []
    intermediates: list[str] = []
    try:
        for tlog in doc.get("tlogs", []):
            der = b64decode_strict(tlog["publicKey"]["rawBytes"], "Rekor key")
            key = load_public_key(der)
            keys.append(key)
            pems.append(key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode())
        for ca in doc.get("certificateAuthorities", []):
            chain = [
                x509.load_der_x509_certificate(b64decode_strict(c["rawBytes"], "CA certificate"))
                for c in ca["certChain"]["certificates"]
            ]
            if not chain:
                continue
            roots.append(chain[-1].public_bytes(Encoding.PEM).decode())
            intermediates += [c.public_bytes(Encoding.PEM).decode() for c in chain[:-1]]
    except (KeyError, TypeError, ValueError):
        raise _bad("got malformed tlogs or certificateAuthorities") from None
    if not keys:
        raise _bad("got no transparency log keys, expected at least one")
    return TrustedRootMaterial(tuple(keys), tuple(pems), tuple(roots), tuple(intermediates))
