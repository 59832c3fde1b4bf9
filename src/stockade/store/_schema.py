"""Versioned schema migrations of the run store. Append only: never edit a shipped migration."""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 1: runs and their evidence
    """
    CREATE TABLE runs (
        run_id TEXT PRIMARY KEY,
        workload TEXT NOT NULL,
        kind TEXT NOT NULL,
        server TEXT,
        backend TEXT NOT NULL,
        policy_hash TEXT NOT NULL,
        image_digest TEXT,
        spec TEXT NOT NULL,
        network_profile TEXT NOT NULL,
        status TEXT NOT NULL,
        end_reason TEXT,
        exit_code INTEGER,
        signal INTEGER,
        created_at TEXT NOT NULL,
        started_at TEXT,
        ended_at TEXT
    );
    CREATE INDEX runs_created ON runs(created_at);
    CREATE INDEX runs_status ON runs(status);
    CREATE TABLE evidence (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        ts TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX evidence_run ON evidence(run_id, id);
    """,
    # 2: approval requests (state machine in stockade.approvals), their transitions, kill switch
    """
    CREATE TABLE approvals (
        id TEXT PRIMARY KEY,
        digest TEXT NOT NULL,
        state TEXT NOT NULL,
        category TEXT NOT NULL,
        session TEXT NOT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX approvals_state ON approvals(state, created_at);
    CREATE TABLE approval_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        request_id TEXT NOT NULL REFERENCES approvals(id) ON DELETE CASCADE,
        ts TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX approval_events_request ON approval_events(request_id, id);
    CREATE TABLE kill_switch (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        engaged INTEGER NOT NULL,
        reason TEXT NOT NULL,
        by TEXT NOT NULL,
        ts TEXT NOT NULL
    );
    """,
    # 3: control plane: run-token revocations (jti "*:<run>" revokes a run) and policy versions
    """
    CREATE TABLE token_revocations (
        jti TEXT PRIMARY KEY,
        run_id TEXT NOT NULL,
        ts TEXT NOT NULL,
        reason TEXT NOT NULL
    );
    CREATE INDEX token_revocations_run ON token_revocations(run_id);
    CREATE TABLE policy_versions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        hash TEXT NOT NULL,
        applied_at TEXT NOT NULL,
        applied_by TEXT NOT NULL,
        document TEXT NOT NULL
    );
    """,
    # 4: remembered approval decisions (stockade.approvals), revocable, with an expiry
    """
    CREATE TABLE remembered (
        id TEXT PRIMARY KEY,
        server TEXT NOT NULL,
        tool TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        revoked INTEGER NOT NULL DEFAULT 0,
        data TEXT NOT NULL
    );
    CREATE INDEX remembered_call ON remembered(server, tool);
    """,
    # 5: operator clears of escalated sessions (stockade.approvals)
    """
    CREATE TABLE escalation_clears (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        session TEXT NOT NULL,
        by TEXT NOT NULL,
        reason TEXT NOT NULL,
        ts TEXT NOT NULL
    );
    CREATE INDEX escalation_clears_session ON escalation_clears(session, id);
    """,
    # 6: blocked egress attempts counted per run, domain and kind (stockade.store.EgressCounter)
    """
    CREATE TABLE egress_blocked (
        run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
        domain TEXT NOT NULL,
        kind TEXT NOT NULL,
        count INTEGER NOT NULL,
        first_ts TEXT NOT NULL,
        last_ts TEXT NOT NULL,
        PRIMARY KEY (run_id, domain, kind)
    );
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)
