"""Gates: preflight and postflight checks, secret scanning, evidence export (docs/api.md)."""

from ._audit import AuditTarget

__all__ = ["AuditTarget"]
