"""Supply chain: image references, registry allowlist, signature verification, registry client."""

from ._allowlist import AllowlistDecision, RegistryAllowlist, RegistryRule
from ._errors import (
    ImageReferenceError,
    RegistryDeniedError,
    RegistryError,
    SignatureVerificationError,
    TrustMaterialError,
)
from ._reference import DEFAULT_REGISTRY, ImageReference, parse_reference

__all__ = [
    "DEFAULT_REGISTRY",
    "AllowlistDecision",
    "ImageReference",
    "ImageReferenceError",
    "RegistryAllowlist",
    "RegistryDeniedError",
    "RegistryError",
    "RegistryRule",
    "SignatureVerificationError",
    "TrustMaterialError",
    "parse_reference",
]
