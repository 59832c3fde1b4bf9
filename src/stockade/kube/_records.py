"""Rollback records on disk: one JSON file per apply, private to the operator (0600 in 0700)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import ValidationError

from stockade import paths

from ._errors import KubeError
from ._rollback import RollbackRecord

__all__ = ["RecordStore", "default_record_dir"]


def default_record_dir() -> Path:
    return paths.home() / "k8s" / "rollback"


class RecordStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, record_id: str) -> Path:
        if "/" in record_id or record_id.startswith("."):
            raise KubeError(f"rollback id {record_id[:60]!r} is not valid", "copy it from --list")
        return self.directory / f"{record_id}.json"

    def save(self, record: RollbackRecord) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self._path(record.id)
        data = record.model_dump_json(indent=2).encode()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            raise KubeError(
                f"rollback record {record.id} already exists", "use a new run id"
            ) from None
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return path

    def load(self, record_id: str) -> RollbackRecord:
        path = self._path(record_id)
        try:
            raw = path.read_bytes()
        except OSError as e:
            raise KubeError(
                f"cannot read rollback record {record_id}: {e.strerror}",
                "list records with: stockade k8s rollback --list",
            ) from None
        try:
            return RollbackRecord.model_validate(json.loads(raw))
        except (ValueError, ValidationError) as e:
            raise KubeError(
                f"rollback record {record_id} is corrupt: {e}",
                "restore it from a backup or roll back by hand",
            ) from None

    def ids(self) -> tuple[str, ...]:
        if not self.directory.is_dir():
            return ()
        return tuple(sorted(p.stem for p in self.directory.glob("*.json")))

    def latest(self) -> RollbackRecord:
        ids = self.ids()
        if not ids:
            raise KubeError(
                "there is no rollback record (nothing was applied)",
                "apply first: stockade k8s apply ... --apply",
            )
        return self.load(ids[-1])
