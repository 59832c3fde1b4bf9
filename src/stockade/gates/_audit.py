"""Where the audit log and its keys live, and verifying it the way the CLI does."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stockade.audit import (
    HMAC_KEY_FILE,
    PUBLIC_KEY_FILE,
    VerifyReport,
    load_hmac_key,
    load_public_key,
    verify_file,
)

__all__ = ["AuditTarget"]


@dataclass(frozen=True)
class AuditTarget:
    """An audit log and the key directory (public key + HMAC key) that verify it."""

    log: Path
    key_dir: Path

    def verify(self) -> VerifyReport:
        """Verify the whole log (chain, HMACs, checkpoints); AuditError if unreadable."""
        return verify_file(
            self.log,
            public_key=load_public_key(self.key_dir / PUBLIC_KEY_FILE),
            hmac_key=load_hmac_key(self.key_dir / HMAC_KEY_FILE),
        )
