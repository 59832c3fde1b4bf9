"""Verification of a log: a pure core over the file's bytes, and a small file adapter.

Numbered steps, per line in order (the first failure is the answer):

1. the line is complete (ends in a newline) -- else ``torn``;
2. it is one JSON object with exactly the event fields, of the right types, in canonical form --
   else ``edited``;
3. its ``seq`` is its position -- else ``deleted`` (a later ``seq`` and the expected one is nowhere
   after) or ``reordered``;
4. its ``prev`` is the hash of the line before (genesis for the first) -- else ``edited``;
5. with the HMAC key: its ``mac`` verifies -- else ``bad-mac``;
6. a ``checkpoint`` line is well-formed and its Ed25519 signature verifies with the public key
   given out of band -- else ``bad-signature``.

Then, with an expected head (an exported checkpoint): the log reaches its ``seq`` -- else
``truncated`` -- and holds that very checkpoint there -- else ``head-missing``.
"""

from __future__ import annotations

import fcntl
import hmac
import json
import os
import re
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from stockade.errors import AuditError, AuditVerifyError
from stockade.models import AuditEvent, Frozen

from ._canon import EVENT_FIELDS, GENESIS, canonical, event_mac, event_to_dict, line_hash
from ._checkpoint import (
    CHECKPOINT_TYPE,
    Checkpoint,
    checkpoint_from_event,
    key_id,
    verify_checkpoint,
)
from ._files import flock_bounded, open_lock

__all__ = [
    "Finding",
    "ProblemKind",
    "VerifyReport",
    "parse_expected_head",
    "parse_line",
    "verify_file",
    "verify_log",
]

ProblemKind = Literal[
    "torn",
    "edited",
    "deleted",
    "reordered",
    "bad-mac",
    "bad-signature",
    "truncated",
    "head-missing",
]
_HASH = re.compile(r"sha256:[0-9a-f]{64}")
_MAC = re.compile(r"hmac-sha256:[0-9a-f]{64}")


class Finding(Frozen):
    """The first problem: 1-based ``line`` number, the ``seq`` expected there, and why."""

    line: int
    seq: int | None
    kind: ProblemKind
    detail: str

    def __str__(self) -> str:
        return f"line {self.line} (seq {self.seq}): {self.kind}: {self.detail}"


class VerifyReport(Frozen):
    ok: bool
    checks: tuple[str, ...]
    lines: int
    events: int
    checkpoints: int
    sealed_through: int | None = None
    unsealed: int = 0
    head: Checkpoint | None = None
    problem: Finding | None = None


def parse_line(raw: bytes) -> AuditEvent:
    """Parse one line (without newline); raise :class:`AuditVerifyError` saying what is wrong."""
    try:
        obj = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as e:
        raise AuditVerifyError(f"not valid JSON ({e})", "") from e
    if not isinstance(obj, dict):
        raise AuditVerifyError(f"got a JSON {type(obj).__name__}, expected an object", "")
    if set(obj) != EVENT_FIELDS:
        raise AuditVerifyError(f"got fields {sorted(obj)}, expected {sorted(EVENT_FIELDS)}", "")
    types: dict[str, Any] = {
        "seq": int,
        "ts": str,
        "type": str,
        "data": dict,
        "prev": str,
        "mac": str,
        "run_id": (str, type(None)),
        "session_id": (str, type(None)),
    }
    for name, want in types.items():
        if not isinstance(obj[name], want) or isinstance(obj[name], bool):
            raise AuditVerifyError(f"field {name!r} has the wrong type", "")
    if not _HASH.fullmatch(obj["prev"]) or not _MAC.fullmatch(obj["mac"]):
        raise AuditVerifyError("prev/mac are not sha256:/hmac-sha256: hex digests", "")
    if canonical(obj) != raw:
        raise AuditVerifyError("the bytes are not the event's canonical form", "")
    try:
        return AuditEvent.model_validate(obj)
    except ValidationError as e:
        raise AuditVerifyError(f"not a valid audit event: {e.error_count()} errors", "") from e


def parse_expected_head(text: str) -> Checkpoint | str:
    """An exported checkpoint document, or a checkpoint id (``sha256:<hex>`` or bare hex)."""
    s = text.strip()
    if s.startswith("{"):
        try:
            doc = json.loads(s)
            cp = Checkpoint.model_validate({k: v for k, v in doc.items() if k != "id"})
        except (ValueError, ValidationError, AttributeError) as e:
            raise AuditVerifyError(
                "the expected head is not an exported checkpoint document",
                "pass the file `stockade audit head --export` wrote",
            ) from e
        if doc.get("id", cp.id) != cp.id:
            raise AuditVerifyError(
                f"the expected head document says id {str(doc['id'])[:80]}, but its fields hash "
                f"to {cp.id}",
                "the document was altered: use an intact copy",
            )
        return cp
    hid = s if s.startswith("sha256:") else "sha256:" + s
    if not _HASH.fullmatch(hid):
        raise AuditVerifyError(
            f"expected head {s[:80]!r} is not a checkpoint id or document",
            "pass the exported checkpoint file or its sha256:<hex> id",
        )
    return hid


def verify_log(
    content: bytes,
    *,
    public_key: Ed25519PublicKey,
    hmac_key: bytes | None = None,
    expect_head: Checkpoint | str | None = None,
) -> VerifyReport:
    """Check a whole log; the report names the first bad line, or says what was proved."""
    checks = [
        "line structure and canonical form",
        "hash chain from genesis",
        f"Ed25519 checkpoint signatures (key {key_id(public_key)})",
    ]
    checks.append(
        "HMAC of every line" if hmac_key is not None else "HMAC skipped (no HMAC key given)"
    )
    if expect_head is not None:
        checks.append("expected head present")
    raws = content.split(b"\n")
    torn = raws.pop() != b""
    events: list[AuditEvent | str] = []
    for raw in raws:
        try:
            events.append(parse_line(raw))
        except AuditVerifyError as e:
            events.append(e.what)
    seqs = [e.seq for e in events if isinstance(e, AuditEvent)]
    prev, n_cp, head = GENESIS, 0, None
    counts: dict[str, Any] = {"checks": tuple(checks), "lines": len(raws) + torn}

    def fail(i: int, kind: ProblemKind, detail: str) -> VerifyReport:
        return VerifyReport(
            ok=False,
            events=len(raws) - n_cp,
            checkpoints=n_cp,
            head=head,
            sealed_through=head.seq if head else None,
            problem=Finding(line=i + 1, seq=i, kind=kind, detail=detail),
            **counts,
        )

    for i, (raw, ev) in enumerate(zip(raws, events, strict=True)):
        if isinstance(ev, str):
            return fail(i, "edited", ev)
        if ev.seq != i:
            gone = ev.seq > i and i not in seqs[i:]
            return fail(
                i,
                "deleted" if gone else "reordered",
                f"got seq {ev.seq}, expected {i}"
                + (": lines were removed here" if gone else ": lines are out of order"),
            )
        if ev.prev != prev:
            what = "genesis" if i == 0 else f"the hash of line {i}"
            return fail(i, "edited", f"prev is not {what}: line {i} or this line was changed")
        if hmac_key is not None:
            body = {k: v for k, v in event_to_dict(ev).items() if k != "mac"}
            if not hmac.compare_digest(ev.mac, event_mac(hmac_key, body)):
                return fail(i, "bad-mac", "HMAC does not verify: line edited, or another key")
        if ev.type == CHECKPOINT_TYPE:
            try:
                cp = checkpoint_from_event(ev)
                verify_checkpoint(cp, public_key)
            except AuditVerifyError as e:
                return fail(i, "bad-signature", e.what)
            n_cp, head = n_cp + 1, cp
        prev = line_hash(raw)
    if torn:
        return fail(
            len(raws),
            "torn",
            "last line has no newline: a write was cut short "
            "(run `stockade audit repair` to record it and go on)",
        )
    if expect_head is not None:
        found = _find_head(raws, events, expect_head, public_key)
        if found is not None:
            return fail(*found)
    return VerifyReport(
        ok=True,
        events=len(raws) - n_cp,
        checkpoints=n_cp,
        head=head,
        sealed_through=head.seq if head else None,
        unsealed=len(raws) - (head.seq + 1 if head else 0),
        **counts,
    )


def _find_head(
    raws: list[bytes],
    events: list[AuditEvent | str],
    want: Checkpoint | str,
    public_key: Ed25519PublicKey,
) -> tuple[int, ProblemKind, str] | None:
    cps = {}
    for ev in events:
        if isinstance(ev, AuditEvent) and ev.type == CHECKPOINT_TYPE:
            cp = checkpoint_from_event(ev)
            cps[cp.id] = cp
    if isinstance(want, str):
        if want in cps:
            return None
        return (
            len(raws),
            "head-missing",
            f"no checkpoint with id {want} in the log: it was cut or rewritten",
        )
    try:
        verify_checkpoint(want, public_key)
    except AuditVerifyError as e:
        return (want.seq, "bad-signature", f"the expected head document: {e.what}")
    if want.seq >= len(raws):
        return (
            len(raws),
            "truncated",
            f"log ends at seq {len(raws) - 1} but the exported head "
            f"is at seq {want.seq}: its tail was deleted",
        )
    if want.id not in cps or cps[want.id].seq != want.seq:
        return (
            want.seq,
            "head-missing",
            f"line at seq {want.seq} is not the exported checkpoint {want.id}",
        )
    return None


def _shared_lock(path: Path, timeout: float) -> int | None:
    if not path.with_name(path.name + ".lock").exists():
        return None  # a copy of the log, away from its writers
    try:
        fd = open_lock(path, create=False)
    except AuditError:
        return None  # no lock file (a copy of the log) or not ours to open: read without it
    try:
        flock_bounded(fd, path, timeout, fcntl.LOCK_SH)
    except AuditError:
        os.close(fd)
        raise
    return fd


def verify_file(
    path: Path,
    *,
    public_key: Ed25519PublicKey,
    hmac_key: bytes | None = None,
    expect_head: Checkpoint | str | None = None,
    lock_timeout: float = 30.0,
) -> VerifyReport:
    """Read ``path`` (whole, into memory) and :func:`verify_log` it.

    While reading it holds a shared lock on ``<log>.lock`` when that file exists and can be
    opened, so an append in progress is not mistaken for a torn line.
    """
    lock = _shared_lock(path, lock_timeout)
    try:
        content = path.read_bytes()
    except OSError as e:
        raise AuditError(f"cannot read audit log {path}: {e.strerror}", "check the path") from e
    finally:
        if lock is not None:
            os.close(lock)
    return verify_log(content, public_key=public_key, hmac_key=hmac_key, expect_head=expect_head)
