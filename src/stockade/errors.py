"""The one exception root of stockade and its documented tree.

Every error says *what failed* and *how to fix it*. Only the CLI and HTTP boundaries catch
:class:`StockadeError`; everything else lets it propagate (fail closed).

Tree::

    StockadeError
    ├── UsageError                 bad command-line use (exit 2)
    ├── InputError                 a file could not be read or parsed (exit 2 for `admit`)
    ├── PolicyError                a policy file is invalid or unsafe
    ├── SecretStoreError           a secret is missing, unreadable or has unsafe permissions
    ├── AuditError                 audit log problems
    │   ├── AuditKeyError          keys missing, unsafe, or would be created beside an existing log
    │   └── AuditVerifyError       a log failed verification (names the first bad line)
    ├── StoreError                 run store (SQLite) problems
    │   └── NotFoundError          a run / record id does not exist
    ├── SandboxError               a run could not be launched as specified (refused)
    ├── SupplyChainError           image reference, registry, digest or signature failure
    ├── GatewayError               MCP gateway failures
    ├── ApprovalError              approval state machine / channel failures
    └── IdentityError              certificates, tokens, authentication
"""

from __future__ import annotations

__all__ = [
    "ApprovalError",
    "AuditError",
    "AuditKeyError",
    "AuditVerifyError",
    "GatewayError",
    "IdentityError",
    "InputError",
    "NotFoundError",
    "PolicyError",
    "SandboxError",
    "SecretStoreError",
    "StockadeError",
    "StoreError",
    "SupplyChainError",
    "UsageError",
]


class StockadeError(Exception):
    """Root of every error stockade raises on purpose.

    ``what`` says what failed; ``fix`` says what the operator can do about it.
    """

    exit_code: int = 1

    def __init__(self, what: str, fix: str = "") -> None:
        self.what = what
        self.fix = fix
        super().__init__(self.message)

    @property
    def message(self) -> str:
        if self.fix:
            return f"{self.what}\n  fix: {self.fix}"
        return self.what


class UsageError(StockadeError):
    exit_code = 2


class InputError(StockadeError):
    exit_code = 2


class PolicyError(StockadeError):
    """A policy file is invalid; ``problems`` lists each finding (file:line: message)."""

    def __init__(self, what: str, fix: str = "", problems: tuple[str, ...] = ()) -> None:
        self.problems = problems
        super().__init__(what, fix)


class SecretStoreError(StockadeError):
    pass


class AuditError(StockadeError):
    pass


class AuditKeyError(AuditError):
    pass


class AuditVerifyError(AuditError):
    pass


class StoreError(StockadeError):
    pass


class NotFoundError(StoreError):
    pass


class SandboxError(StockadeError):
    pass


class SupplyChainError(StockadeError):
    pass


class GatewayError(StockadeError):
    pass


class ApprovalError(StockadeError):
    pass


class IdentityError(StockadeError):
    pass
