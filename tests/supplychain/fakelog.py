"""A transparency log made in the test: its own ECDSA key, real SETs, a trusted_root.json for it."""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def new_p256() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_pem(key: ec.EllipticCurvePrivateKey | object) -> bytes:
    return key.public_key().public_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


class FakeLog:
    def __init__(self) -> None:
        self.key = new_p256()
        der = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.der = der
        self.log_id = hashlib.sha256(der).hexdigest()
        self.index = 100

    def trusted_root(self) -> bytes:
        return json.dumps(
            {
                "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
                "tlogs": [
                    {
                        "baseUrl": "https://log.invalid",
                        "hashAlgorithm": "SHA2_256",
                        "publicKey": {
                            "rawBytes": b64(self.der),
                            "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                            "validFor": {"start": "2020-01-01T00:00:00Z"},
                        },
                        "logId": {"keyId": b64(bytes.fromhex(self.log_id))},
                    }
                ],
                "certificateAuthorities": [],
                "ctlogs": [],
            }
        ).encode()

    def body(self, signature: bytes, payload_sha256: str, signer_pem: bytes) -> str:
        entry = {
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": {"hash": {"algorithm": "sha256", "value": payload_sha256}},
                "signature": {"content": b64(signature), "publicKey": {"content": b64(signer_pem)}},
            },
        }
        return b64(json.dumps(entry).encode())

    def log(self, body: str, integrated_time: int = 1_700_000_000) -> dict[str, object]:
        self.index += 1
        payload = {
            "body": body,
            "integratedTime": integrated_time,
            "logID": self.log_id,
            "logIndex": self.index,
        }
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        sig = self.key.sign(canonical, ec.ECDSA(hashes.SHA256()))
        return {"SignedEntryTimestamp": b64(sig), "Payload": payload}

    def cosign_bundle(self, signature: bytes, payload: bytes, signer_pem: bytes) -> str:
        body = self.body(signature, hashlib.sha256(payload).hexdigest(), signer_pem)
        return json.dumps(self.log(body))

    def key_bundle(self, artifact: bytes, signing_key: ec.EllipticCurvePrivateKey) -> bytes:
        signature = signing_key.sign(artifact, ec.ECDSA(hashes.SHA256()))
        digest = hashlib.sha256(artifact)
        logged = self.log(self.body(signature, digest.hexdigest(), public_pem(signing_key)))
        p, set_b64 = logged["Payload"], logged["SignedEntryTimestamp"]
        assert isinstance(p, dict)
        return json.dumps(
            {
                "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                "verificationMaterial": {
                    "publicKey": {"hint": "test"},
                    "tlogEntries": [
                        {
                            "logIndex": str(p["logIndex"]),
                            "logId": {"keyId": b64(bytes.fromhex(self.log_id))},
                            "kindVersion": {"kind": "hashedrekord", "version": "0.0.1"},
                            "integratedTime": str(p["integratedTime"]),
                            "inclusionPromise": {"signedEntryTimestamp": set_b64},
                            "canonicalizedBody": p["body"],
                        }
                    ],
                },
                "messageSignature": {
                    "messageDigest": {"algorithm": "SHA2_256", "digest": b64(digest.digest())},
                    "signature": b64(signature),
                },
            }
        ).encode()
