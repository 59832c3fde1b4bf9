"""Evidence export: a folder an auditor can check offline.

Contents::

    trace.json              the run trace (record, verification, decisions, tool calls, approvals)
    audit.jsonl             a byte-exact copy of the audit log (verify it with the public key)
    audit-excerpt.jsonl     the run's audit events and every signed checkpoint line
    checkpoint.json         the latest signed checkpoint (the head) at export time
    verification.json       the verification report of the log at export time
    audit-public-key.pem    the Ed25519 key that verifies the checkpoints
    MANIFEST.json           SHA-256 of every file above

The HMAC key is never exported. Nothing is written if the export would carry a secret.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from stockade.audit import PUBLIC_KEY_FILE

from ._gates import GateError, GateInputs, audit_lines_of_run
from ._scan import scan_text

__all__ = ["export_evidence"]


def _dump(obj: object) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()


def export_evidence(run_id: str, out: Path, inputs: GateInputs) -> dict[str, str]:
    """Write the evidence folder for ``run_id`` into ``out`` (new or empty); return the manifest."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise GateError(f"{out} exists and is not an empty directory", "choose a new --out")
    with inputs.open_store() as store:
        trace = store.trace(run_id).model_dump(mode="json")
    report = inputs.audit.verify()
    try:
        log_bytes = inputs.audit.log.read_bytes()
        pubkey = (inputs.audit.key_dir / PUBLIC_KEY_FILE).read_bytes()
    except OSError as e:
        raise GateError(f"cannot read the audit log or its public key: {e}", "check paths") from e
    excerpt = "\n".join(audit_lines_of_run(inputs.audit.log, run_id)) + "\n"
    files: dict[str, bytes] = {
        "trace.json": _dump(trace),
        "audit.jsonl": log_bytes,
        "audit-excerpt.jsonl": excerpt.encode(),
        "checkpoint.json": _dump(None if report.head is None else report.head.model_dump()),
        "verification.json": _dump(report.model_dump(mode="json")),
        "audit-public-key.pem": pubkey,
    }
    findings = [
        f
        for name, data in files.items()
        for f in scan_text(name, data.decode("utf-8", "replace"), inputs.secret_values)
    ]
    if findings:
        shown = "; ".join(str(f) for f in findings[:10])
        raise GateError(
            f"the evidence for {run_id} would carry {len(findings)} secret(s): {shown}",
            "nothing was exported; rotate the secrets and investigate how they were logged",
        )
    manifest = {name: "sha256:" + hashlib.sha256(data).hexdigest() for name, data in files.items()}
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name, data in {**files, "MANIFEST.json": _dump(manifest)}.items():
        fd = os.open(out / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    return manifest
