"""Pin files on disk: ``<dir>/<server>.pins.json`` (approved) and ``<server>.pending.json``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ._errors import PinError
from ._pins import Pending, PinSet

__all__ = ["PinStore"]


def _atomic_write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, path)


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise PinError(
            f"cannot read pin file {path}: {e.strerror}", "check the path and permissions"
        ) from e
    except ValueError as e:
        raise PinError(
            f"pin file {path} is not valid JSON: {e}", "restore it or re-approve the tools"
        ) from e


class PinStore:
    """Reads and writes the pin files of every server in one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _pins_path(self, server: str) -> Path:
        return self.directory / f"{server}.pins.json"

    def _pending_path(self, server: str) -> Path:
        return self.directory / f"{server}.pending.json"

    def load(self, server: str) -> PinSet:
        path = self._pins_path(server)
        if not path.exists():
            return PinSet(server=server)
        try:
            pins = PinSet.model_validate(_read(path))
        except ValidationError as e:
            raise PinError(
                f"pin file {path} is malformed: {e.error_count()} problem(s)",
                "restore it or delete it and re-approve",
            ) from e
        if pins.server != server:
            raise PinError(
                f"pin file {path} is for server {pins.server!r}, expected {server!r}",
                "do not copy pin files between servers",
            )
        return pins

    def save(self, pins: PinSet) -> None:
        _atomic_write(self._pins_path(pins.server), pins.model_dump(mode="json"))

    def load_pending(self, server: str) -> tuple[str, dict[str, Pending]]:
        path = self._pending_path(server)
        if not path.exists():
            return "", {}
        raw = _read(path)
        try:
            package = str(raw["package"])
            pending = {k: Pending.model_validate(v) for k, v in dict(raw["pending"]).items()}
        except (KeyError, TypeError, ValidationError) as e:
            raise PinError(
                f"pending file {path} is malformed", "restart the gateway to regenerate it"
            ) from e
        return package, pending

    def save_pending(self, server: str, package: str, pending: dict[str, Pending]) -> None:
        data = {
            "package": package,
            "pending": {k: v.model_dump(mode="json") for k, v in pending.items()},
        }
        _atomic_write(self._pending_path(server), data)

    def servers(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        names = {p.name.split(".")[0] for p in self.directory.glob("*.p*.json")}
        return sorted(names)
