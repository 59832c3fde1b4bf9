"""Readiness probes for ``/readyz``: each returns a short detail or raises StockadeError."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from stockade.errors import AuditVerifyError, StoreError
from stockade.gates._audit import AuditTarget
from stockade.sandbox import find_gvisor
from stockade.store import RunStore

from ._deps import ReadinessCheck

__all__ = ["audit_ready", "gvisor_ready", "store_ready"]


def store_ready(open_store: Callable[[], RunStore]) -> ReadinessCheck:
    def probe() -> str:
        with open_store() as store:
            try:
                store.connection.execute("SELECT 1").fetchone()
            except sqlite3.Error as e:
                raise StoreError(f"the run store does not answer: {e}", "check the database") from e
            return f"schema {store.schema_version}"

    return probe


def audit_ready(target: AuditTarget) -> ReadinessCheck:
    def probe() -> str:
        report = target.verify()
        if not report.ok:
            raise AuditVerifyError(
                f"the audit log fails verification at {report.problem}",
                "run stockade audit verify and investigate before serving",
            )
        return f"{report.events} events, sealed through {report.sealed_through}"

    return probe


def gvisor_ready() -> str:
    rt = find_gvisor()
    return f"runsc {rt.version} ({rt.platform})"
