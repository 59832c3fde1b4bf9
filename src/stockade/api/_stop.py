"""Stopping a run from the API: revoke its tokens now and record the request as evidence.

The API process does not own the sandbox processes; the runner that does acts on the recorded
``stop_requested`` evidence (and its tokens stop working immediately).
"""

from __future__ import annotations

from collections.abc import Callable

from stockade.store import RunStore

from ._revocations import StoreRevocations

__all__ = ["RecordingStopper"]


class RecordingStopper:
    def __init__(self, open_store: Callable[[], RunStore], revocations: StoreRevocations) -> None:
        self._open_store = open_store
        self._revocations = revocations

    def stop(self, run_id: str, by: str) -> str:
        self._revocations.revoke_run(run_id, reason=f"stop requested by {by}")
        with self._open_store() as store:
            store.add_evidence(run_id, "stop_requested", {"by": by})
        return "stop requested; run tokens revoked"
