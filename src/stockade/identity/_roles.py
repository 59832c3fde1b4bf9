"""Roles carried in certificates and the authenticated identity a TLS peer maps to."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from cryptography import x509
from cryptography.x509.oid import NameOID

from stockade.errors import IdentityError
from stockade.models import Frozen

__all__ = [
    "ROLE_URI_PREFIX",
    "PeerIdentity",
    "Role",
    "identity_from_certificate",
    "identity_from_der",
]

ROLE_URI_PREFIX = "stockade://role/"


class Role(StrEnum):
    OPERATOR = "operator"
    GATEWAY = "gateway"
    RUNNER = "runner"


class PeerIdentity(Frozen):
    """Who is on the other end of a verified mutual-TLS connection."""

    name: str
    role: Role
    serial: int
    not_after: datetime


def identity_from_certificate(cert: x509.Certificate) -> PeerIdentity:
    """Map an already chain-verified certificate to its name and its one role.

    Exactly one ``stockade://role/<role>`` SAN URI with a known role is required; anything else
    (none, two, unknown) is refused rather than guessed.
    """
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound as e:
        raise IdentityError(
            "the peer certificate has no subjectAltName, expected a stockade role URI",
            "issue client certificates with: stockade ca issue NAME --role ROLE",
        ) from e
    uris = list(san.get_values_for_type(x509.UniformResourceIdentifier))
    roles = [u.removeprefix(ROLE_URI_PREFIX) for u in uris if u.startswith(ROLE_URI_PREFIX)]
    if len(roles) != 1:
        raise IdentityError(
            f"the peer certificate carries {len(roles)} stockade role URIs, expected exactly one",
            "issue client certificates with: stockade ca issue NAME --role ROLE",
        )
    try:
        role = Role(roles[0])
    except ValueError as e:
        raise IdentityError(
            f"unknown role {roles[0]!r} in the peer certificate, expected one of "
            f"{', '.join(r.value for r in Role)}",
            "issue client certificates with: stockade ca issue NAME --role ROLE",
        ) from e
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    name = str(cns[0].value) if cns else ""
    if not name:
        raise IdentityError(
            "the peer certificate has no common name",
            "issue client certificates with: stockade ca issue NAME --role ROLE",
        )
    return PeerIdentity(
        name=name,
        role=role,
        serial=cert.serial_number,
        not_after=cert.not_valid_after_utc.astimezone(UTC),
    )


def identity_from_der(der: bytes) -> PeerIdentity:
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError as e:
        raise IdentityError("the peer certificate cannot be parsed", "") from e
    return identity_from_certificate(cert)
