"""Tamper-evident audit log: hash-chained, HMAC'd JSON Lines with Ed25519-signed checkpoints.

Writing (the sink every part is handed; it implements :class:`stockade.models.AuditSink`)::

    from stockade.audit import AuditLog

    with AuditLog.open(paths.audit_log(), paths.key_dir(), secrets={"hunter2"}) as sink:
        sink.add_secrets(values_fetched_from_the_secret_store)   # redacted from later events
        event = sink.append("tool_call", {"tool": "fetch", "args": {...}}, run_id=r, session_id=s)

``AuditLog.open(path, key_dir)`` creates the keys in ``key_dir`` on first use, only if the log does
not exist yet (else :class:`~stockade.errors.AuditKeyError`); pass ``keys=`` instead to share
loaded keys. Options: ``checkpoint_every`` (default 100), ``fsync`` (``"event"`` default,
``"batch"`` every ``batch_size`` appends and at close, ``"never"``), ``clock``, ``secrets``,
``lock_timeout``. Appends are safe across processes (``flock`` on ``<log>.lock``). ``close()``
writes a final checkpoint. A torn last line (crash mid-write) makes appends refuse with
:class:`AuditTornTailError` until ``repair_torn_tail()`` (``stockade audit repair``) records it.

Verifying: ``verify_file(path, public_key=load_public_key(pub), hmac_key=..., expect_head=...)``
returns a :class:`VerifyReport`. The pure core is :func:`verify_log` over bytes; the event format
is in :mod:`._canon`, checkpoints in :mod:`._checkpoint`, redaction in :mod:`._redact`, and
docs/audit.md describes it all.
"""

from ._canon import GENESIS, canonical, event_mac, line_hash, seal_event
from ._checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_TYPE,
    Checkpoint,
    checkpoint_from_event,
    checkpoint_message,
    key_id,
    sign_checkpoint,
    verify_checkpoint,
)
from ._keys import (
    HMAC_KEY_FILE,
    PUBLIC_KEY_FILE,
    SIGNING_KEY_FILE,
    AuditKeys,
    load_hmac_key,
    load_keys,
    load_or_create_keys,
    load_public_key,
)
from ._log import RESERVED_TYPES, TORN_TAIL_TYPE, AuditLog, AuditTornTailError, FsyncMode
from ._redact import PATTERNS, Redactor
from ._verify import (
    Finding,
    ProblemKind,
    VerifyReport,
    parse_expected_head,
    parse_line,
    verify_file,
    verify_log,
)

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_TYPE",
    "GENESIS",
    "HMAC_KEY_FILE",
    "PATTERNS",
    "PUBLIC_KEY_FILE",
    "RESERVED_TYPES",
    "SIGNING_KEY_FILE",
    "TORN_TAIL_TYPE",
    "AuditKeys",
    "AuditLog",
    "AuditTornTailError",
    "Checkpoint",
    "Finding",
    "FsyncMode",
    "ProblemKind",
    "Redactor",
    "VerifyReport",
    "canonical",
    "checkpoint_from_event",
    "checkpoint_message",
    "event_mac",
    "key_id",
    "line_hash",
    "load_hmac_key",
    "load_keys",
    "load_or_create_keys",
    "load_public_key",
    "parse_expected_head",
    "parse_line",
    "seal_event",
    "sign_checkpoint",
    "verify_checkpoint",
    "verify_file",
    "verify_log",
]
