"""A transparency log made in the test: its own ECDSA key, real SETs, a trusted_root.json for it."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


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

    def cosign_bundle(
        self,
        signature: bytes,
        payload: bytes,
        signer_pem: bytes,
        integrated_time: int = 1_700_000_000,
    ) -> str:
        body = self.body(signature, hashlib.sha256(payload).hexdigest(), signer_pem)
        return json.dumps(self.log(body, integrated_time))

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


class FakeFulcio:
    """A certificate authority made in the test: root -> intermediate -> short-lived leaves."""

    ISSUER_V1 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
    ISSUER_V2 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")

    def __init__(self, name: str = "test-fulcio") -> None:
        self.root_key = new_p256()
        self.int_key = new_p256()
        start = datetime(2020, 1, 1, tzinfo=UTC)
        self.root = self._ca(name, self.root_key, self.root_key, name, start)
        self.intermediate = self._ca(
            f"{name}-intermediate", self.int_key, self.root_key, name, start
        )

    @staticmethod
    def _ca(
        subject: str,
        key: ec.EllipticCurvePrivateKey,
        signer: ec.EllipticCurvePrivateKey,
        issuer: str,
        start: datetime,
    ) -> x509.Certificate:
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + timedelta(days=3650 * 3))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(signer, hashes.SHA256())
        )

    def leaf(
        self,
        email: str,
        issuer: str,
        *,
        at: datetime,
        v1: bool = False,
        code_signing: bool = True,
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = new_p256()
        if v1:
            ext = x509.UnrecognizedExtension(self.ISSUER_V1, issuer.encode())
        else:
            raw = issuer.encode()
            ext = x509.UnrecognizedExtension(self.ISSUER_V2, bytes([0x0C, len(raw)]) + raw)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.intermediate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(at - timedelta(minutes=1))
            .not_valid_after(at + timedelta(minutes=9))
            .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=True)
            .add_extension(ext, critical=False)
        )
        if code_signing:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False
            )
        return key, builder.sign(self.int_key, hashes.SHA256())

    def pem(self, cert: x509.Certificate) -> str:
        return cert.public_bytes(serialization.Encoding.PEM).decode()

    def trusted_root(self, log: FakeLog) -> bytes:
        doc = json.loads(log.trusted_root())
        doc["certificateAuthorities"] = [
            {
                "subject": {"commonName": "test-fulcio"},
                "certChain": {
                    "certificates": [
                        {"rawBytes": b64(c.public_bytes(serialization.Encoding.DER))}
                        for c in (self.intermediate, self.root)
                    ]
                },
                "validFor": {"start": "2020-01-01T00:00:00Z"},
            }
        ]
        return json.dumps(doc).encode()
