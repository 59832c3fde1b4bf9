"""The supply chain's errors: each one says what failed (got X, expected Y) and how to fix it."""

from __future__ import annotations

from stockade.errors import SupplyChainError

__all__ = [
    "ImageReferenceError",
    "RegistryDeniedError",
    "RegistryError",
    "SignatureVerificationError",
    "TrustMaterialError",
]


class ImageReferenceError(SupplyChainError):
    """An image reference does not follow the distribution reference grammar."""


class RegistryDeniedError(SupplyChainError):
    """The image's registry/repository is not on the allowlist."""


class TrustMaterialError(SupplyChainError):
    """A key, certificate or trusted root is missing or unreadable (fail closed)."""


class SignatureVerificationError(SupplyChainError):
    """No signature satisfied the policy; ``failures`` lists why each candidate was rejected."""

    def __init__(self, what: str, fix: str = "", failures: tuple[str, ...] = ()) -> None:
        self.failures = failures
        super().__init__(what, fix)


class RegistryError(SupplyChainError):
    """The registry could not be reached, or answered with something we do not accept."""
