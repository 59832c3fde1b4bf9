"""Secret stores: policies name secrets, stores hold their values (never shown anywhere)."""

from ._names import SECRET_NAME_PATTERN, is_secret_name, validate_secret_name
from ._store import (
    MAX_SECRET_BYTES,
    DirectorySecretStore,
    MemorySecretStore,
    SecretStore,
    values_for_redaction,
)

__all__ = [
    "MAX_SECRET_BYTES",
    "SECRET_NAME_PATTERN",
    "DirectorySecretStore",
    "MemorySecretStore",
    "SecretStore",
    "is_secret_name",
    "validate_secret_name",
    "values_for_redaction",
]
