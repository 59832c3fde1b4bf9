"""Stopping a run from the API: revoke its tokens now and record the request as evidence.

The API process does not own the sandbox processes; the runner that does acts on the recorded
``stop_requested`` evidence (and its tokens stop working immediately).
"""

from __future__ import annotations

from collections.abc import Callable

from stockade.store import RunStore

from ._revocations import StoreRevocations

__all__ = ["RecordingStopper", "StoreStopCheck"]


class RecordingStopper:
    def __init__(self, open_store: Callable[[], RunStore], revocations: StoreRevocations) -> None:
        self._open_store = open_store
        self._revocations = revocations

    def stop(self, run_id: str, by: str) -> str:
        self._revocations.revoke_run(run_id, reason=f"stop requested by {by}")
        with self._open_store() as store:
            store.add_evidence(run_id, "stop_requested", {"by": by})
        return "stop requested; run tokens revoked"


class StoreStopCheck:
    """The runner's side: ``check()`` names who asked to stop ``run_id``, or ``None``.

    Give it to ``Sandbox.watch_stop``: the run's monitor polls it (bounded interval) and kills the
    sandbox with end reason ``killed_by_operator``. It reads the ``stop_requested`` evidence the API
    records, opening the store afresh each time (it runs in the monitor thread).
    """

    def __init__(self, open_store: Callable[[], RunStore], run_id: str) -> None:
        self._open_store = open_store
        self._run_id = run_id

    def __call__(self) -> str | None:
        with self._open_store() as store:
            items = [e for e in store.evidence(self._run_id) if e.kind == "stop_requested"]
        if not items:
            return None
        by = items[0].data.get("by")
        return by if isinstance(by, str) and by else "(unnamed operator)"
