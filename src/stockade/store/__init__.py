"""Run store: run records and their evidence in SQLite (the embedded default).

``RunStore.open(path)`` migrates the schema forward (``PRAGMA user_version``); ``create``,
``update``, ``get``, ``list``, ``add_evidence``, ``evidence`` and ``trace`` (a :class:`RunTrace`).
"""

from ._schema import SCHEMA_VERSION
from ._store import RunStore
from ._trace import EvidenceItem, RunTrace

__all__ = ["SCHEMA_VERSION", "EvidenceItem", "RunStore", "RunTrace"]
