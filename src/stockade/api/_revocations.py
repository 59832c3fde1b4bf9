"""Run-token revocations kept in the run store (table ``token_revocations``)."""

from __future__ import annotations

from collections.abc import Callable

from stockade.models import Clock
from stockade.store import RunStore

__all__ = ["StoreRevocations"]


class StoreRevocations:
    """Implements :class:`stockade.identity.RevocationList`; a ``*`` jti revokes a whole run."""

    def __init__(self, open_store: Callable[[], RunStore], clock: Clock) -> None:
        self._open_store = open_store
        self._clock = clock

    def _insert(self, jti: str, run_id: str, reason: str) -> None:
        with self._open_store() as store:
            store.connection.execute(
                "INSERT OR IGNORE INTO token_revocations (jti, run_id, ts, reason) "
                "VALUES (?, ?, ?, ?)",
                (jti, run_id, self._clock.now().isoformat(), reason),
            )

    def revoke(self, jti: str, run_id: str, reason: str = "") -> None:
        self._insert(jti, run_id, reason)

    def revoke_run(self, run_id: str, reason: str = "") -> None:
        self._insert(f"*:{run_id}", run_id, reason)

    def is_revoked(self, jti: str, run_id: str) -> bool:
        with self._open_store() as store:
            row = store.connection.execute(
                "SELECT 1 FROM token_revocations WHERE jti = ? OR jti = ? LIMIT 1",
                (jti, f"*:{run_id}"),
            ).fetchone()
        return row is not None
