"""A small certificate authority: ECDSA P-256 keys, short-lived role certificates, a signed CRL.

Layout of the CA directory (0700)::

    ca.key      the CA private key (PKCS#8 PEM, 0600)
    ca.pem      the self-signed CA certificate
    crl.pem     the current certificate revocation list, signed by the CA
    revoked.json  serials revoked so far (the CRL is rebuilt from it)

Every issued certificate carries its role as a ``stockade://role/<role>`` SAN URI, the NAME as its
common name, and (when given) DNS names / IP addresses for server use.
"""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from stockade.errors import IdentityError
from stockade.models import Clock

from ._roles import ROLE_URI_PREFIX, Role

__all__ = [
    "CA_CERT_FILE",
    "CA_KEY_FILE",
    "CRL_FILE",
    "DEFAULT_CERT_VALIDITY",
    "CertificateAuthority",
    "IssuedCertificate",
]

CA_KEY_FILE = "ca.key"
CA_CERT_FILE = "ca.pem"
CRL_FILE = "crl.pem"
REVOKED_FILE = "revoked.json"
DEFAULT_CERT_VALIDITY = timedelta(hours=24)
CA_VALIDITY = timedelta(days=365)
CRL_VALIDITY = timedelta(days=7)
MAX_CERT_VALIDITY = timedelta(days=30)


@dataclass(frozen=True)
class IssuedCertificate:
    name: str
    role: Role
    serial: int
    not_after: datetime
    cert_pem: bytes
    key_pem: bytes


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _check_private_file(path: Path) -> None:
    st = path.lstat()
    if st.st_mode & 0o077 or not path.is_file() or path.is_symlink():
        raise IdentityError(
            f"the CA key {path} is readable by others (mode {oct(st.st_mode & 0o777)}), "
            "expected a regular file with mode 0600",
            f"chmod 600 {path}",
        )


class CertificateAuthority:
    """Load with :meth:`load`, create with :meth:`init`; every time comes from the given clock."""

    def __init__(self, directory: Path, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate):
        self.directory = directory
        self._key = key
        self.cert = cert

    # -- lifecycle --------------------------------------------------------------------------
    @classmethod
    def init(
        cls, directory: Path, clock: Clock, *, name: str = "stockade CA"
    ) -> CertificateAuthority:
        d = Path(directory)
        if (d / CA_KEY_FILE).exists() or (d / CA_CERT_FILE).exists():
            raise IdentityError(
                f"a CA already exists in {d}",
                "use it, or move it away first if you really mean to start a new one",
            )
        try:
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(d, 0o700)
        except OSError as e:
            raise IdentityError(f"cannot create the CA directory {d}: {e.strerror}", "") from e
        key = ec.generate_private_key(ec.SECP256R1())
        now = clock.now()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + CA_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_private(d / CA_KEY_FILE, key_pem)
        _write_public(d / CA_CERT_FILE, cert.public_bytes(serialization.Encoding.PEM))
        ca = cls(d, key, cert)
        ca._save_revoked({})
        ca.write_crl(clock)
        return ca

    @classmethod
    def load(cls, directory: Path) -> CertificateAuthority:
        d = Path(directory)
        key_path = d / CA_KEY_FILE
        try:
            _check_private_file(key_path)
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            cert = x509.load_pem_x509_certificate((d / CA_CERT_FILE).read_bytes())
        except FileNotFoundError as e:
            raise IdentityError(f"no CA in {d}", "create one with: stockade ca init") from e
        except (OSError, ValueError) as e:
            raise IdentityError(f"cannot load the CA in {d}: {e}", "check the CA files") from e
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise IdentityError(f"the CA key in {d} is not an EC key", "recreate the CA")
        return cls(d, key, cert)

    # -- issuing ----------------------------------------------------------------------------
    def issue(
        self,
        name: str,
        role: Role,
        clock: Clock,
        *,
        validity: timedelta = DEFAULT_CERT_VALIDITY,
        hosts: tuple[str, ...] = (),
    ) -> IssuedCertificate:
        if not name or len(name) > 64 or not name.isprintable():
            raise IdentityError(f"got certificate name {name!r}, expected 1-64 printable chars", "")
        if not timedelta(0) < validity <= MAX_CERT_VALIDITY:
            raise IdentityError(
                f"got validity {validity}, expected more than 0 and at most {MAX_CERT_VALIDITY}",
                "certificates are short-lived: rotate them instead",
            )
        now = clock.now()
        if now + validity > self.cert.not_valid_after_utc:
            raise IdentityError("the certificate would outlive the CA", "renew the CA first")
        key = ec.generate_private_key(ec.SECP256R1())
        names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(ROLE_URI_PREFIX + role)]
        for h in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(h)))
            except ValueError:
                names.append(x509.DNSName(h))
        serial = x509.random_serial_number()
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(now - timedelta(minutes=1))
            .not_valid_after(now + validity)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), False
            )
            .sign(self._key, hashes.SHA256())
        )
        return IssuedCertificate(
            name=name,
            role=role,
            serial=serial,
            not_after=cert.not_valid_after_utc,
            cert_pem=cert.public_bytes(serialization.Encoding.PEM),
            key_pem=key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )

    # -- revocation -------------------------------------------------------------------------
    def _load_revoked(self) -> dict[str, str]:
        try:
            raw = json.loads((self.directory / REVOKED_FILE).read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            raise IdentityError(f"cannot read the revocation list: {e}", "restore it") from e
        if not isinstance(raw, dict):
            raise IdentityError("the revocation list is not a JSON object", "restore it")
        return {str(k): str(v) for k, v in raw.items()}

    def _save_revoked(self, revoked: dict[str, str]) -> None:
        _write_public(self.directory / REVOKED_FILE, json.dumps(revoked, sort_keys=True).encode())

    def revoke(self, serial: int, clock: Clock) -> None:
        revoked = self._load_revoked()
        revoked.setdefault(str(serial), clock.now().isoformat())
        self._save_revoked(revoked)
        self.write_crl(clock)

    def revoked_serials(self) -> frozenset[int]:
        return frozenset(int(s) for s in self._load_revoked())

    def _previous_crl(self) -> tuple[datetime | None, int]:
        try:
            old = x509.load_pem_x509_crl(self.crl_path.read_bytes())
        except FileNotFoundError:
            return None, 0
        except (OSError, ValueError) as e:
            raise IdentityError(f"cannot read the CRL {self.crl_path}: {e}", "restore it") from e
        try:
            number = old.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        except x509.ExtensionNotFound:
            number = 0
        return old.last_update_utc, number

    def build_crl(self, clock: Clock) -> x509.CertificateRevocationList:
        """A CRL newer than the last one: a higher CRL number and a strictly later lastUpdate,
        so a verifier holding both (a reloaded context) prefers this one even within a second."""
        now = clock.now()
        previous, number = self._previous_crl()
        last = (now - timedelta(minutes=1)).replace(microsecond=0)
        if previous is not None and last <= previous:
            last = previous + timedelta(seconds=1)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.cert.subject)
            .last_update(last)
            .next_update(now + CRL_VALIDITY)
            .add_extension(x509.CRLNumber(number + 1), critical=False)
        )
        for serial, when in sorted(self._load_revoked().items()):
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(int(serial))
                .revocation_date(datetime.fromisoformat(when))
                .build()
            )
        return builder.sign(self._key, hashes.SHA256())

    def write_crl(self, clock: Clock) -> Path:
        path = self.directory / CRL_FILE
        _write_public(path, self.build_crl(clock).public_bytes(serialization.Encoding.PEM))
        return path

    @property
    def cert_path(self) -> Path:
        return self.directory / CA_CERT_FILE

    @property
    def crl_path(self) -> Path:
        return self.directory / CRL_FILE
