"""Approval requests, their transitions and the kill switch in the run store's SQLite file.

Each thread uses its own connection (the gateway's approver waits in a worker
thread; the CLI and the web page write decisions from other processes). Every write is one
``BEGIN IMMEDIATE`` transaction with a compare-and-set on the state, so two channels deciding at
once cannot both win.
Reading a request whose deadline has passed expires it (persisted and audited): a restart can
find a request pending or expired, never approved.
"""

from __future__ import annotations

import builtins
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from stockade.errors import StoreError
from stockade.models import AuditSink
from stockade.store import SCHEMA_VERSION, RunStore

from ._errors import ApprovalNotFound, IllegalTransition
from ._escalate import EscalationRules, escalation
from ._kill import KillSwitch
from ._machine import ApprovalRequest, AuditRecord, Event, State, apply, expire_if_due
from ._remember import Remembered

__all__ = ["ApprovalStore"]


def _iso(t: datetime) -> str:
    if t.tzinfo is None:
        raise StoreError(f"naive timestamp {t!r} given to the approval store", "use UTC datetimes")
    return t.astimezone(UTC).isoformat()


class ApprovalStore:
    """Persistence adapter; the decisions themselves are made by the pure machine."""

    def __init__(self, path: Path | str, *, audit: AuditSink | None = None) -> None:
        self.path = Path(path)
        self._audit = audit
        self._migrated = False
        self._local = threading.local()
        self._lock = threading.Lock()
        self._conns: builtins.list[sqlite3.Connection] = []
        with self._open():
            pass  # migrate now: fail at start, not at the first approval

    # -- connections ----------------------------------------------------------------------------
    # Each thread keeps one connection for the store's life (the gateway's approver waits in
    # worker threads; SQLite connections are bound to their thread). Connections are never
    # closed mid-run: a connection closing in a process where another one is idle may find itself
    # "last", checkpoint and remove the WAL under the others (seen as "disk I/O error" or a
    # malformed store when a second process, e.g. ``stockade approvals deny``, also writes).
    # ``RunStore.open`` (which creates and migrates the file) is used only when the file is
    # missing or older than this stockade: it opens and closes a plain descriptor on the file,
    # and on POSIX closing any descriptor drops every lock this process holds on the file,
    # including the locks of connections already open in this process (the gateway's own run
    # store) -- another process may then remove the WAL under them.
    @contextmanager
    def _open(self) -> Iterator[sqlite3.Connection]:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if not self._migrated:
                if not _current(self.path):
                    with RunStore.open(self.path):
                        pass
                self._migrated = True
            try:
                conn = sqlite3.connect(
                    self.path, timeout=10.0, isolation_level=None, check_same_thread=False
                )
            except sqlite3.Error as e:
                raise StoreError(
                    f"cannot open the run store at {self.path}: {e}",
                    "check the path and its permissions",
                ) from e
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA busy_timeout = 10000")
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        yield conn

    def close(self) -> None:
        """Close every thread's connection (call once no operation is running)."""
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.close()
        self._local = threading.local()

    def __enter__(self) -> ApprovalStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._open() as c:
            c.execute("BEGIN IMMEDIATE")
            try:
                yield c
            except BaseException:
                c.execute("ROLLBACK")
                raise
            c.execute("COMMIT")

    def _emit(self, record: AuditRecord | None) -> None:
        if record is not None and self._audit is not None:
            self._audit.append(record.type, record.data, session_id=record.session_id)

    # -- requests -------------------------------------------------------------------------------
    def add(self, request: ApprovalRequest) -> ApprovalRequest:
        if request.state != State.PENDING:
            raise IllegalTransition(
                f"approval {request.id}: only pending requests are recorded, got "
                f"{request.state.value}",
                "create requests with new_request()",
            )
        try:
            with self._tx() as c:
                c.execute(
                    "INSERT INTO approvals (id, digest, state, category, session, created_at, "
                    "expires_at, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        request.id,
                        request.digest,
                        request.state.value,
                        request.category.value,
                        request.call.session,
                        _iso(request.created_at),
                        _iso(request.expires_at),
                        request.model_dump_json(),
                    ),
                )
                _evidence(
                    c,
                    request,
                    {
                        "event": "approval.requested",
                        "to": request.state.value,
                        "at": request.created_at.isoformat(),
                        "expires_at": request.expires_at.isoformat(),
                        "policy_hash": request.binding.policy_hash,
                    },
                )
        except sqlite3.IntegrityError as e:
            raise StoreError(
                f"approval {request.id!r} already exists", "approval ids are unique"
            ) from e
        if self._audit is not None:
            self._audit.append(
                "approval.requested",
                {
                    "id": request.id,
                    "digest": request.digest,
                    "server": request.call.server,
                    "tool": request.call.tool,
                    "category": request.category.value,
                    "reason": request.reason,
                    "rule": request.rule,
                    "expires_at": request.expires_at.isoformat(),
                    "policy_hash": request.binding.policy_hash,
                },
                session_id=request.call.session or None,
            )
        return request

    def get(self, request_id: str, *, now: datetime) -> ApprovalRequest:
        """The request as of ``now`` (expired first if its deadline has passed)."""
        with self._tx() as c:
            req = self._read(c, request_id)
            updated, record = expire_if_due(req, now)
            if record is not None:
                self._write(c, req, updated, record)
        self._emit(record)
        return updated

    def list(
        self, *, now: datetime, states: tuple[State, ...] = (), limit: int = 100
    ) -> builtins.list[ApprovalRequest]:
        """Requests, oldest first, expiring any that are due; optionally only in ``states``."""
        self.expire_due(now)
        with self._open() as c:
            return self._select(c, states, limit)

    @staticmethod
    def _select(
        c: sqlite3.Connection, states: tuple[State, ...], limit: int
    ) -> builtins.list[ApprovalRequest]:
        if states:
            marks = ", ".join("?" for _ in states)
            rows = c.execute(
                f"SELECT data FROM approvals WHERE state IN ({marks}) "  # noqa: S608  # nosec B608 - only "?" marks
                "ORDER BY created_at, rowid LIMIT ?",
                (*(s.value for s in states), limit),
            ).fetchall()
        else:
            rows = c.execute(
                "SELECT data FROM approvals ORDER BY created_at DESC, rowid DESC LIMIT ?", (limit,)
            ).fetchall()
        return [_parse(r["data"]) for r in rows]

    def expire_due(self, now: datetime) -> builtins.list[ApprovalRequest]:
        """Expire every open request whose deadline has passed (what a restart does first)."""
        records: builtins.list[AuditRecord] = []
        out: builtins.list[ApprovalRequest] = []
        with self._tx() as c:
            rows = c.execute(
                "SELECT data FROM approvals WHERE state IN ('pending', 'approved') "
                "AND expires_at <= ?",
                (_iso(now),),
            ).fetchall()
            for r in rows:
                req = _parse(r["data"])
                updated, record = expire_if_due(req, now)
                if record is not None:
                    self._write(c, req, updated, record)
                    records.append(record)
                    out.append(updated)
        for rec in records:
            self._emit(rec)
        return out

    def transition(self, request_id: str, event: Event) -> ApprovalRequest:
        """Apply ``event`` (expiring first if due); illegal events raise and change nothing."""
        with self._tx() as c:
            req = self._read(c, request_id)
            current, expired = expire_if_due(req, event.at)
            if expired is not None:
                self._write(c, req, current, expired)
        # The expiry is committed even when the event is then refused.
        self._emit(expired)
        with self._tx() as c:
            req = self._read(c, request_id)
            updated, record = apply(req, event)
            self._write(c, req, updated, record)
        self._emit(record)
        return updated

    def save(self, before: ApprovalRequest, after: ApprovalRequest, record: AuditRecord) -> None:
        """Persist a transition computed by the pure core (e.g. :func:`recheck`)."""
        with self._tx() as c:
            self._write(c, before, after, record)
        self._emit(record)

    def events(self, request_id: str) -> builtins.list[dict[str, Any]]:
        with self._open() as c:
            rows = c.execute(
                "SELECT data FROM approval_events WHERE request_id = ? ORDER BY id", (request_id,)
            ).fetchall()
        return [json.loads(r["data"]) for r in rows]

    def _read(self, c: sqlite3.Connection, request_id: str) -> ApprovalRequest:
        row = c.execute("SELECT data FROM approvals WHERE id = ?", (request_id,)).fetchone()
        if row is None:
            raise ApprovalNotFound(
                f"no approval request {request_id!r}", "list them with: stockade approvals list"
            )
        return _parse(row["data"])

    def _write(
        self,
        c: sqlite3.Connection,
        before: ApprovalRequest,
        after: ApprovalRequest,
        record: AuditRecord,
    ) -> None:
        cur = c.execute(
            "UPDATE approvals SET state = ?, data = ? WHERE id = ? AND state = ?",
            (after.state.value, after.model_dump_json(), before.id, before.state.value),
        )
        if cur.rowcount != 1:
            raise IllegalTransition(
                f"approval {before.id} changed state concurrently (expected {before.state.value})",
                "show it again and decide on its current state",
            )
        c.execute(
            "INSERT INTO approval_events (request_id, ts, data) VALUES (?, ?, ?)",
            (before.id, record.data["at"], json.dumps(record.data, sort_keys=True)),
        )
        _evidence(c, after, {**record.data, "event": record.type})

    # -- kill switch ----------------------------------------------------------------------------
    def kill_switch(self) -> KillSwitch:
        with self._open() as c:
            row = c.execute(
                "SELECT engaged, reason, by, ts FROM kill_switch ORDER BY id DESC LIMIT 1"
            ).fetchone()
        if row is None:
            return KillSwitch.off()
        return KillSwitch(
            engaged=bool(row["engaged"]),
            reason=row["reason"],
            by=row["by"],
            at=datetime.fromisoformat(row["ts"]),
        )

    def kill_history(self, limit: int = 20) -> builtins.list[KillSwitch]:
        with self._open() as c:
            rows = c.execute(
                "SELECT engaged, reason, by, ts FROM kill_switch ORDER BY id DESC LIMIT ?", (limit,)
            ).fetchall()
        return [
            KillSwitch(
                engaged=bool(r["engaged"]),
                reason=r["reason"],
                by=r["by"],
                at=datetime.fromisoformat(r["ts"]),
            )
            for r in rows
        ]

    def set_kill(self, *, engaged: bool, by: str, reason: str, now: datetime) -> builtins.list[str]:
        """Engage (cancelling every open request) or lift the switch; returns cancelled ids."""
        if not reason.strip():
            raise StoreError(
                "the kill switch needs a reason", "say why: stockade kill --reason '...'"
            )
        records: builtins.list[AuditRecord] = []
        with self._tx() as c:
            c.execute(
                "INSERT INTO kill_switch (engaged, reason, by, ts) VALUES (?, ?, ?, ?)",
                (int(engaged), reason, by, _iso(now)),
            )
            if engaged:
                rows = c.execute(
                    "SELECT data FROM approvals WHERE state IN ('pending', 'approved')"
                ).fetchall()
                for r in rows:
                    req = _parse(r["data"])
                    ev = Event(
                        kind="cancel",
                        by=by,
                        channel="system",
                        at=now,
                        reason=f"kill switch: {reason}",
                    )
                    updated, record = apply(req, ev)
                    self._write(c, req, updated, record)
                    records.append(record)
        if self._audit is not None:
            self._audit.append(
                "approval.kill_switch",
                {"engaged": engaged, "by": by, "reason": reason, "at": now.isoformat()},
            )
        for rec in records:
            self._emit(rec)
        return [str(r.data["id"]) for r in records]

    # -- remembered decisions -------------------------------------------------------------------
    def remember(self, rem: Remembered) -> Remembered:
        try:
            with self._tx() as c:
                c.execute(
                    "INSERT INTO remembered (id, server, tool, expires_at, revoked, data) "
                    "VALUES (?, ?, ?, ?, 0, ?)",
                    (rem.id, rem.server, rem.tool, _iso(rem.expires_at), rem.model_dump_json()),
                )
        except sqlite3.IntegrityError as e:
            raise StoreError(
                f"remembered decision {rem.id!r} already exists", "use a new id"
            ) from e
        if self._audit is not None:
            self._audit.append("approval.remembered", rem.model_dump(mode="json"))
        return rem

    def remembered(
        self,
        *,
        now: datetime,
        server: str | None = None,
        tool: str | None = None,
        include_inactive: bool = False,
    ) -> builtins.list[Remembered]:
        with self._open() as c:
            if server is not None and tool is not None:
                rows = c.execute(
                    "SELECT data FROM remembered WHERE server = ? AND tool = ? ORDER BY rowid",
                    (server, tool),
                ).fetchall()
            else:
                rows = c.execute("SELECT data FROM remembered ORDER BY rowid").fetchall()
        out = [_parse_remembered(r["data"]) for r in rows]
        return out if include_inactive else [r for r in out if r.active(now)]

    def forget(self, rem_id: str, *, by: str, now: datetime) -> Remembered:
        """Revoke a remembered decision (kept, marked revoked, for the record)."""
        with self._tx() as c:
            row = c.execute("SELECT data FROM remembered WHERE id = ?", (rem_id,)).fetchone()
            if row is None:
                raise ApprovalNotFound(
                    f"no remembered decision {rem_id!r}",
                    "list them with: stockade approvals remembered",
                )
            rem = _parse_remembered(row["data"])
            if rem.revoked_at is None:
                rem = rem.model_copy(update={"revoked_by": by, "revoked_at": now})
                c.execute(
                    "UPDATE remembered SET revoked = 1, data = ? WHERE id = ?",
                    (rem.model_dump_json(), rem_id),
                )
        if self._audit is not None:
            self._audit.append(
                "approval.forgotten", {"id": rem_id, "by": by, "at": now.isoformat()}
            )
        return rem

    # -- escalation -------------------------------------------------------------------------------
    def escalated(
        self, session: str, *, now: datetime, rules: EscalationRules | None = None
    ) -> str | None:
        """Why ``session`` is escalated (since its last clear), or ``None``."""
        if not session:
            return None
        with self._open() as c:
            row = c.execute(
                "SELECT ts FROM escalation_clears WHERE session = ? ORDER BY id DESC LIMIT 1",
                (session,),
            ).fetchone()
            rows = c.execute(
                "SELECT data FROM approvals WHERE session = ? ORDER BY created_at", (session,)
            ).fetchall()
        since = datetime.fromisoformat(row["ts"]) if row is not None else None
        reqs = [expire_if_due(_parse(r["data"]), now)[0] for r in rows]
        return escalation(reqs, now=now, since=since, rules=rules)

    def escalated_sessions(self, *, now: datetime) -> dict[str, str]:
        with self._open() as c:
            sessions = [
                r["session"]
                for r in c.execute("SELECT DISTINCT session FROM approvals WHERE session != ''")
            ]
        out = {}
        for sess in sessions:
            why = self.escalated(sess, now=now)
            if why is not None:
                out[sess] = why
        return out

    def clear_escalation(self, session: str, *, by: str, reason: str, now: datetime) -> None:
        if not reason.strip():
            raise StoreError("clearing an escalation needs a reason", "pass --reason '...'")
        with self._tx() as c:
            c.execute(
                "INSERT INTO escalation_clears (session, by, reason, ts) VALUES (?, ?, ?, ?)",
                (session, by, reason, _iso(now)),
            )
        if self._audit is not None:
            self._audit.append(
                "approval.escalation_cleared",
                {"session": session, "by": by, "reason": reason, "at": now.isoformat()},
                session_id=session,
            )


def _evidence(c: sqlite3.Connection, request: ApprovalRequest, data: dict[str, Any]) -> None:
    """The transition as ``approval`` evidence of the downstream server's run, in the same
    transaction (so ``stockade trace RUN`` tells the whole story whichever channel decided).
    A request without a run (an unsandboxed gateway) or whose run is gone records nothing here;
    the approval tables and the audit log still hold it."""
    if not request.run_id:
        return
    story = {
        "id": request.id,
        "digest": request.digest,
        "server": request.call.server,
        "tool": request.call.tool,
        "category": request.category.value,
        "flagged": request.reason,
        "rule": request.rule,
        "provenance": list(request.provenance),
        "state": request.state.value,
        "decided_by": request.decided_by,
        "channel": request.channel,
        "note": request.note,
        **data,
    }
    c.execute(
        "INSERT INTO evidence (run_id, kind, ts, data) "
        "SELECT ?, 'approval', ?, ? WHERE EXISTS (SELECT 1 FROM runs WHERE run_id = ?)",
        (request.run_id, str(data["at"]), json.dumps(story, sort_keys=True), request.run_id),
    )


def _current(path: Path) -> bool:
    """Whether ``path`` is a run store already at this stockade's schema (read directly)."""
    if not path.is_file():
        return False
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10.0)
    except sqlite3.Error:
        return False
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.DatabaseError:
        return False
    finally:
        conn.close()
    return version == SCHEMA_VERSION


def _parse_remembered(raw: str) -> Remembered:
    try:
        return Remembered.model_validate_json(raw)
    except ValidationError as e:
        raise StoreError(
            f"a remembered-decision row in the run store is invalid: {e.errors()[0]['msg']}",
            "the store may be corrupt or written by another version; move it aside",
        ) from e


def _parse(raw: str) -> ApprovalRequest:
    try:
        return ApprovalRequest.model_validate_json(raw)
    except ValidationError as e:
        raise StoreError(
            f"an approval row in the run store is invalid: {e.errors()[0]['msg']}",
            "the store may be corrupt or written by another version; move it aside",
        ) from e
