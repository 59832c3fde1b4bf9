"""The small interfaces the runner needs from parts it does not own."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from stockade.models import RunRecord

__all__ = ["RunStoreLike", "SecretSource"]


@runtime_checkable
class RunStoreLike(Protocol):
    def create(self, record: RunRecord) -> RunRecord: ...

    def update(self, run_id: str, /, **changes: Any) -> RunRecord: ...

    def add_evidence(self, run_id: str, kind: str, data: dict[str, Any]) -> Any: ...


@runtime_checkable
class SecretSource(Protocol):
    """Any secret store: ``get(name)`` returns the value (never logged, never in env)."""

    def get(self, name: str) -> bytes: ...
