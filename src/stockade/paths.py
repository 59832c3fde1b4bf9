"""Default locations of stockade's state: ``$STOCKADE_HOME`` (default ``~/.stockade``)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["audit_log", "home", "key_dir", "run_store", "secret_dir"]


def home() -> Path:
    env = os.environ.get("STOCKADE_HOME")
    return Path(env) if env else Path.home() / ".stockade"


def run_store() -> Path:
    return home() / "runs.db"


def audit_log() -> Path:
    return home() / "audit" / "audit.jsonl"


def key_dir() -> Path:
    return home() / "keys"


def secret_dir() -> Path:
    return home() / "secrets"
