"""Renewal when the CA key lives on another host: a renewal command, or a watched directory.

The API host keeps only the CA certificate (and the CRL the issuer publishes). A new pair comes
from outside, either from a **renewal command** the operator configures (run without a shell once
the served certificate is due; it writes ``cert.pem`` and ``key.pem`` into a private directory it
is given) or from a **directory** an external issuer refreshes. Either way the pair is checked
before anything is replaced (:func:`verify_renewal`, numbered steps, each failing with "got X,
expected Y"): one PEM certificate and a matching private key; issued and signed by the trusted CA;
the same name, role and hosts as the certificate served now; valid now, and outliving the current
one; not on the CRL. A refused pair changes nothing: the old certificate keeps serving.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from stockade.errors import IdentityError
from stockade.models import Clock

from ._renew import install_pair, is_due
from ._roles import identity_from_certificate

__all__ = [
    "MAX_PEM_BYTES",
    "CommandRenewer",
    "DirectoryRenewer",
    "ExternalRenewer",
    "renew_external",
    "verify_renewal",
]

MAX_PEM_BYTES = 64 * 1024
CERT_NAME, KEY_NAME = "cert.pem", "key.pem"


class ExternalRenewer(Protocol):
    """Where a renewed pair comes from: ``(cert_pem, key_pem)``, or None when there is none yet."""

    def fetch(self, current_cert: Path, *, due: bool) -> tuple[bytes, bytes] | None: ...


def _bad(what: str, fix: str = "check the external issuer's output") -> IdentityError:
    return IdentityError(f"renewed certificate refused: {what}", fix)


def _hosts(cert: x509.Certificate) -> frozenset[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return frozenset()
    return frozenset(
        [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
        + list(san.get_values_for_type(x509.DNSName))
    )


def verify_renewal(
    current: x509.Certificate,
    cert_pem: bytes,
    key_pem: bytes,
    ca_cert: x509.Certificate,
    clock: Clock,
    *,
    crl: x509.CertificateRevocationList | None = None,
) -> x509.Certificate:
    """The renewed certificate if every step passes; else :class:`IdentityError` naming the step."""
    # 1. exactly one PEM certificate, and a private key that matches it
    try:
        certs = x509.load_pem_x509_certificates(cert_pem)
    except ValueError as e:
        raise _bad("step 1: got no PEM certificate, expected one") from e
    if len(certs) != 1:
        raise _bad(f"step 1: got {len(certs)} certificates, expected exactly one")
    new = certs[0]
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as e:
        raise _bad("step 1: got no unencrypted PEM private key, expected one") from e
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if key.public_key().public_bytes(der, spki) != new.public_key().public_bytes(der, spki):
        raise _bad("step 1: got a private key of another certificate, expected the matching key")
    # 2. issued and signed by the trusted CA
    try:
        new.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature) as e:
        raise _bad(
            f"step 2: got a certificate issued by {new.issuer.rfc4514_string()!r} that the CA "
            f"{ca_cert.subject.rfc4514_string()!r} did not sign, expected one it signed",
            "issue it from the stockade CA this server trusts",
        ) from e
    # 3. the same identity: name, role and hosts
    was, now_id = identity_from_certificate(current), identity_from_certificate(new)
    if (now_id.name, now_id.role) != (was.name, was.role):
        raise _bad(
            f"step 3: got {now_id.role.value}:{now_id.name}, expected {was.role.value}:{was.name}",
            "renew the served certificate with the same name and role",
        )
    if _hosts(new) != _hosts(current):
        raise _bad(
            f"step 3: got hosts {sorted(_hosts(new))}, expected {sorted(_hosts(current))}",
            "renew with the same --host names",
        )
    # 4. valid now and outliving the current certificate
    at = clock.now()
    if not new.not_valid_before_utc <= at < new.not_valid_after_utc:
        raise _bad(
            f"step 4: got validity {new.not_valid_before_utc} .. {new.not_valid_after_utc}, "
            f"expected it to include now ({at})"
        )
    if new.not_valid_after_utc <= current.not_valid_after_utc:
        raise _bad(
            f"step 4: got expiry {new.not_valid_after_utc}, expected later than the served "
            f"certificate's {current.not_valid_after_utc}"
        )
    # 5. not revoked
    if crl is not None and crl.get_revoked_certificate_by_serial_number(new.serial_number):
        raise _bad(f"step 5: serial {new.serial_number} is on the CRL, expected not revoked")
    return new


def _read_bounded(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as f:
        data = f.read(MAX_PEM_BYTES + 1)
    if len(data) > MAX_PEM_BYTES:
        raise _bad(f"{path} is over {MAX_PEM_BYTES} bytes")
    return data


@dataclass(frozen=True)
class CommandRenewer:
    """Runs ``argv`` (no shell) when the served certificate is due.

    The command gets ``STOCKADE_RENEW_DIR`` (a fresh 0700 directory, removed afterwards) and
    ``STOCKADE_CURRENT_CERT`` in its environment, and must write ``cert.pem`` and ``key.pem``
    into that directory and exit 0 within ``timeout_s``.
    """

    argv: tuple[str, ...]
    timeout_s: float = 60.0

    @classmethod
    def parse(cls, command: str, timeout_s: float = 60.0) -> CommandRenewer:
        try:
            argv = tuple(shlex.split(command))
        except ValueError as e:
            raise IdentityError(f"cannot split the renewal command: {e}", "quote it") from e
        if not argv:
            raise IdentityError("the renewal command is empty", "name a program to run")
        return cls(argv, timeout_s)

    def fetch(self, current_cert: Path, *, due: bool) -> tuple[bytes, bytes] | None:
        if not due:
            return None
        with tempfile.TemporaryDirectory(prefix="stockade-renew-") as d:
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "STOCKADE_RENEW_DIR": d,
                "STOCKADE_CURRENT_CERT": str(current_cert),
            }
            try:
                proc = subprocess.run(  # the operator's configured command, no shell
                    self.argv,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    timeout=self.timeout_s,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as e:
                raise IdentityError(
                    f"the renewal command {self.argv[0]!r} failed to run: {e}",
                    "check the command and that it finishes within its timeout",
                ) from e
            if proc.returncode != 0:
                tail = proc.stderr.decode(errors="replace")[-300:]
                raise IdentityError(
                    f"the renewal command exited {proc.returncode}: {tail}", "see its output"
                )
            try:
                return _read_bounded(Path(d) / CERT_NAME), _read_bounded(Path(d) / KEY_NAME)
            except OSError as e:
                raise _bad(
                    f"the renewal command did not leave {CERT_NAME} and {KEY_NAME}: {e.strerror}",
                    "write both files into $STOCKADE_RENEW_DIR",
                ) from e


@dataclass(frozen=True)
class DirectoryRenewer:
    """An external issuer refreshes ``cert.pem``/``key.pem`` in ``directory``; taken when new."""

    directory: Path

    def fetch(self, current_cert: Path, *, due: bool) -> tuple[bytes, bytes] | None:
        try:
            cert = _read_bounded(self.directory / CERT_NAME)
            key = _read_bounded(self.directory / KEY_NAME)
            served = current_cert.read_bytes()
        except FileNotFoundError:
            return None  # nothing published yet
        except OSError as e:
            raise _bad(f"cannot read {self.directory}: {e.strerror}", "check the directory") from e
        return None if cert == served else (cert, key)


def renew_external(
    renewer: ExternalRenewer,
    cert: Path,
    key: Path,
    ca_cert: Path,
    clock: Clock,
    *,
    crl: Path | None = None,
    fraction: float = 1 / 3,
) -> bool:
    """Take a renewed pair from ``renewer`` if it has one, verify it, and replace ``cert``/``key``.

    Returns whether it replaced them (the caller then rotates: ``ApiServer.rotate``).
    """
    try:
        current = x509.load_pem_x509_certificate(cert.read_bytes())
        trusted = x509.load_pem_x509_certificate(ca_cert.read_bytes())
        revoked = None if crl is None else x509.load_pem_x509_crl(crl.read_bytes())
    except (OSError, ValueError) as e:
        raise IdentityError(f"cannot read the served certificate, CA or CRL: {e}", "") from e
    if revoked is not None:
        try:
            ok = revoked.is_signature_valid(trusted.public_key())  # type: ignore[arg-type]
        except TypeError:
            ok = False
        if not ok:
            raise IdentityError("the CRL is not signed by the trusted CA", "publish the CA's CRL")
    pair = renewer.fetch(cert, due=is_due(current, clock, fraction))
    if pair is None:
        return False
    verify_renewal(current, pair[0], pair[1], trusted, clock, crl=revoked)
    install_pair(cert, key, pair[0], pair[1])
    return True
