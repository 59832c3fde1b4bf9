"""Identity: the stockade CA, role certificates, TLS 1.3 mutual-auth contexts and run tokens.

See docs/identity.md. ``CertificateAuthority.init/load/issue/revoke`` manage certificates;
``server_context`` / ``client_context`` build TLS 1.3-only ``ssl.SSLContext`` objects that require
client certificates and honour the CRL; ``peer_identity`` maps a verified peer to its
:class:`Role`. ``TokenAuthority`` issues and checks per-run tokens.
"""

from ._ca import (
    CA_CERT_FILE,
    CA_KEY_FILE,
    CRL_FILE,
    DEFAULT_CERT_VALIDITY,
    CertificateAuthority,
    IssuedCertificate,
)
from ._crl import CrlWatcher
from ._external import (
    CommandRenewer,
    DirectoryRenewer,
    ExternalRenewer,
    renew_external,
    verify_renewal,
)
from ._renew import renew_if_due
from ._roles import (
    ROLE_URI_PREFIX,
    PeerIdentity,
    Role,
    identity_from_certificate,
    identity_from_der,
)
from ._tls import client_context, peer_identity, server_context
from ._tokens import (
    DEFAULT_TOKEN_TTL,
    MAX_TOKEN_TTL,
    TOKEN_PREFIX,
    MemoryRevocations,
    RevocationList,
    RunTokenClaims,
    TokenAuthority,
    TokenError,
)

__all__ = [
    "CA_CERT_FILE",
    "CA_KEY_FILE",
    "CRL_FILE",
    "DEFAULT_CERT_VALIDITY",
    "DEFAULT_TOKEN_TTL",
    "MAX_TOKEN_TTL",
    "ROLE_URI_PREFIX",
    "TOKEN_PREFIX",
    "CertificateAuthority",
    "CommandRenewer",
    "CrlWatcher",
    "DirectoryRenewer",
    "ExternalRenewer",
    "IssuedCertificate",
    "MemoryRevocations",
    "PeerIdentity",
    "RevocationList",
    "Role",
    "RunTokenClaims",
    "TokenAuthority",
    "TokenError",
    "client_context",
    "identity_from_certificate",
    "identity_from_der",
    "peer_identity",
    "renew_external",
    "renew_if_due",
    "server_context",
    "verify_renewal",
]
