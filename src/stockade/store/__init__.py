"""Run store: run records and their evidence in SQLite (the embedded default).

``RunStore.open(path)`` migrates the schema forward (``PRAGMA user_version``); ``create``,
``update``, ``get``, ``list``, ``add_evidence``, ``evidence`` and ``trace`` (a :class:`RunTrace`).
:class:`EgressCounter` counts blocked egress attempts into it.
"""

from ._egress import MAX_DOMAINS_PER_RUN, OTHER_DOMAIN, EgressCounter
from ._schema import SCHEMA_VERSION
from ._store import RunStore
from ._trace import EvidenceItem, RunTrace

__all__ = [
    "MAX_DOMAINS_PER_RUN",
    "OTHER_DOMAIN",
    "SCHEMA_VERSION",
    "EgressCounter",
    "EvidenceItem",
    "RunStore",
    "RunTrace",
]
