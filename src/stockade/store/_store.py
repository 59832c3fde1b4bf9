"""SQLite run store: run records and their evidence (the embedded default)."""

from __future__ import annotations

import builtins
import errno
import json
import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from stockade.errors import NotFoundError, StoreError
from stockade.models import RunRecord, RunStatus

from ._egress import bound_domain, bound_kind, upsert_blocked
from ._schema import MIGRATIONS, SCHEMA_VERSION
from ._trace import EvidenceItem, RunTrace

__all__ = ["RunStore"]

_JSON_FIELDS = ("spec", "network_profile")
_TIME_FIELDS = ("created_at", "started_at", "ended_at")
_COLUMNS = tuple(RunRecord.model_fields)


def _ts(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise StoreError(
            f"naive timestamp {value!r} given to the run store",
            "pass timezone-aware datetimes (UTC)",
        )
    return value.astimezone(UTC).isoformat()


def _create_private(p: Path) -> None:
    """Create the store file (0600) if missing; refuse a symlink or a non-regular file.

    An existing file is only ``lstat``-ed, never opened here: closing any descriptor of a file
    drops every POSIX lock this process holds on it, including SQLite's locks of a connection
    the process already has open (which can corrupt the database under concurrent writers).
    """
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        try:
            fd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            st = os.lstat(p)  # created by another process meanwhile: check it below
        else:
            os.close(fd)
            return
    if not stat.S_ISREG(st.st_mode):
        raise OSError(errno.ELOOP, "not a regular file (a symlink or special file)")


def _missing(run_id: str) -> NotFoundError:
    return NotFoundError(
        f"no run {run_id!r} in the run store", "list the runs it has with: stockade runs"
    )


def _row_to_record(row: sqlite3.Row) -> RunRecord:
    raw: dict[str, Any] = dict(row)
    for f in _JSON_FIELDS:
        raw[f] = json.loads(raw[f])
    return RunRecord.model_validate(raw)


class RunStore:
    """Run records and evidence in one SQLite file (mode 0600 in a 0700 directory).

    Use :meth:`open`; the schema is migrated forward on open, and a database written by a newer
    stockade (unknown schema version) is refused rather than guessed at.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path

    # -- lifecycle ------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: Path | str) -> RunStore:
        p = Path(path)
        try:
            p.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            _create_private(p)
            conn = sqlite3.connect(p, timeout=10.0, isolation_level=None)
        except OSError as e:
            raise StoreError(
                f"cannot open the run store at {p}: {e.strerror}",
                "check the path and its permissions, or set STOCKADE_HOME to a writable directory",
            ) from e
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA busy_timeout = 10000")
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            store = cls(conn, p)
            store._migrate()
        except sqlite3.DatabaseError as e:
            conn.close()
            raise StoreError(
                f"the run store at {p} is not a usable SQLite database: {e}",
                "move the file aside (it may be corrupt) and run again to create a new store",
            ) from e
        return store

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _migrate(self) -> None:
        with self._tx() as c:
            version = int(c.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"run store {self.path} has schema version {version}, this stockade knows "
                    f"up to {SCHEMA_VERSION}",
                    "upgrade stockade, or point STOCKADE_HOME at another directory",
                )
            for n in range(version, SCHEMA_VERSION):
                for stmt in MIGRATIONS[n].split(";"):
                    if stmt.strip():
                        c.execute(stmt)
                c.execute(f"PRAGMA user_version = {n + 1}")

    @property
    def connection(self) -> sqlite3.Connection:
        """The migrated SQLite connection (autocommit), for parts that keep their own tables."""
        return self._conn

    @property
    def schema_version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    # -- runs -----------------------------------------------------------------------------------
    def create(self, record: RunRecord) -> RunRecord:
        values = self._to_row(record)
        cols = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        try:
            with self._tx() as c:
                c.execute(f"INSERT INTO runs ({cols}) VALUES ({marks})", tuple(values.values()))  # noqa: S608 - columns from RunRecord  # nosec B608
        except sqlite3.IntegrityError as e:
            raise StoreError(
                f"run {record.run_id!r} already exists in the run store",
                "run ids are unique: generate a fresh id for each run",
            ) from e
        return record

    def update(self, run_id: str, /, **changes: Any) -> RunRecord:
        unknown = set(changes) - set(_COLUMNS) | ({"run_id"} & set(changes))
        if unknown:
            raise StoreError(
                f"cannot update run fields {sorted(unknown)}",
                f"updatable fields are {sorted(set(_COLUMNS) - {'run_id'})}",
            )
        with self._tx() as c:
            row = c.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                raise _missing(run_id)
            current = _row_to_record(row)
            try:
                updated = RunRecord.model_validate({**current.model_dump(), **changes})
            except ValidationError as e:
                raise StoreError(
                    f"invalid update of run {run_id!r}: {e.errors()[0]['msg']}",
                    "pass values of the RunRecord field types",
                ) from e
            values = self._to_row(updated)
            sets = ", ".join(f"{k} = ?" for k in values if k != "run_id")
            params = tuple(v for k, v in values.items() if k != "run_id")
            c.execute(f"UPDATE runs SET {sets} WHERE run_id = ?", (*params, run_id))  # noqa: S608 - columns from RunRecord  # nosec B608
        return updated

    def get(self, run_id: str) -> RunRecord:
        row = self._conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            raise _missing(run_id)
        return _row_to_record(row)

    def list(self, *, limit: int = 50, status: RunStatus | None = None) -> list[RunRecord]:
        if status is None:
            rows = self._conn.execute(
                "SELECT * FROM runs ORDER BY created_at DESC, rowid DESC LIMIT ?", (limit,)
            )
        else:
            rows = self._conn.execute(
                "SELECT * FROM runs WHERE status = ? ORDER BY created_at DESC, rowid DESC LIMIT ?",
                (status.value, limit),
            )
        return [_row_to_record(r) for r in rows]

    # -- evidence -------------------------------------------------------------------------------
    def add_evidence(
        self, run_id: str, kind: str, data: dict[str, Any], *, ts: datetime | None = None
    ) -> EvidenceItem:
        when = _ts(ts or datetime.now(UTC))
        assert when is not None  # noqa: S101 - for mypy: ts is always set here
        item = EvidenceItem(kind=kind, ts=when, data=data)
        try:
            with self._tx() as c:
                c.execute(
                    "INSERT INTO evidence (run_id, kind, ts, data) VALUES (?, ?, ?, ?)",
                    (run_id, kind, when, json.dumps(data, sort_keys=True, default=str)),
                )
        except sqlite3.IntegrityError as e:
            raise NotFoundError(
                f"cannot add evidence: no run {run_id!r} in the run store",
                "create the run record before adding its evidence",
            ) from e
        return item

    def evidence(self, run_id: str) -> builtins.list[EvidenceItem]:
        rows = self._conn.execute(
            "SELECT kind, ts, data FROM evidence WHERE run_id = ? ORDER BY id", (run_id,)
        )
        return [EvidenceItem(kind=r["kind"], ts=r["ts"], data=json.loads(r["data"])) for r in rows]

    def trace(self, run_id: str) -> RunTrace:
        return RunTrace.build(self.get(run_id), self.evidence(run_id))

    # -- blocked egress (stockade.store.EgressCounter) -----------------------------------------
    def count_egress_blocked(self, run_id: str, domain: str, kind: str, ts: datetime) -> None:
        """One more blocked attempt of ``run_id`` to ``domain`` for ``kind`` (bounded first)."""
        when = _ts(ts)
        assert when is not None  # noqa: S101 - for mypy: ts is always set here
        try:
            with self._tx() as c:
                upsert_blocked(c, run_id, bound_domain(domain), bound_kind(kind), when)
        except sqlite3.IntegrityError as e:
            raise _missing(run_id) from e

    def egress_blocked(self) -> builtins.list[tuple[str, str, str, int]]:
        """(server or "", domain, kind, count) of every run, for the metrics endpoint."""
        rows = self._conn.execute(
            "SELECT COALESCE(r.server, ''), e.domain, e.kind, e.count "
            "FROM egress_blocked e JOIN runs r USING (run_id)"
        )
        return [(str(a), str(b), str(c), int(d)) for a, b, c, d in rows]

    # -- helpers --------------------------------------------------------------------------------
    @staticmethod
    def _to_row(record: RunRecord) -> dict[str, Any]:
        raw = record.model_dump(mode="python")
        for f in _JSON_FIELDS:
            raw[f] = json.dumps(raw[f], sort_keys=True, default=str)
        for f in _TIME_FIELDS:
            raw[f] = _ts(raw[f])
        for f in ("status", "end_reason"):
            raw[f] = raw[f].value if raw[f] is not None else None
        return {k: raw[k] for k in _COLUMNS}
