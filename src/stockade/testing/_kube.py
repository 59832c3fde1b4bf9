"""An in-memory :class:`stockade.kube.ClusterApi` for pure-logic tests of plan/apply/rollback.

It stores objects by reference, assigns a ``resourceVersion`` and ``uid`` on every write (as an
API server does), enforces create-must-not-exist / replace-must-exist and optimistic concurrency,
and records every call. It does not admit, default or schedule anything.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from stockade.kube import KubeError, Manifest, ObjRef, ref_of

__all__ = ["FakeAttach", "FakeCluster"]


@dataclass
class FakeCluster:
    objects: dict[ObjRef, Manifest] = field(default_factory=dict)
    daemonsets: dict[str, tuple[str, ...]] = field(default_factory=dict)
    calls: list[tuple[str, ObjRef]] = field(default_factory=list)
    #: References whose next write fails (to test partial applies).
    fail_on: set[ObjRef] = field(default_factory=set)
    #: Per Pod: the ``status`` documents :meth:`step` applies, one per call (phases over time).
    script: dict[ObjRef, list[Manifest]] = field(default_factory=dict)
    #: Per Pod: the server container's log as ``pod_log`` returns it.
    logs: dict[ObjRef, str] = field(default_factory=dict)
    #: Per Pod: the attach stream :meth:`attach` hands out (default: a new MCP echo server).
    attachments: dict[ObjRef, FakeAttach] = field(default_factory=dict)
    _version: int = 0

    def put(self, obj: Manifest) -> None:
        """Seed an object directly (as if it existed before the test)."""
        self._store(copy.deepcopy(obj))

    def _store(self, obj: Manifest) -> None:
        self._version += 1
        meta = obj.setdefault("metadata", {})
        meta["resourceVersion"] = str(self._version)
        meta.setdefault("uid", f"uid-{self._version}")
        meta.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
        self.objects[ref_of(obj)] = obj

    def _check(self, op: str, ref: ObjRef) -> None:
        self.calls.append((op, ref))
        if ref in self.fail_on:
            raise KubeError(f"{op} {ref} failed (injected)", "retry")

    def get(self, ref: ObjRef) -> Manifest | None:
        obj = self.objects.get(ref)
        return copy.deepcopy(obj) if obj is not None else None

    def create(self, obj: Manifest) -> None:
        ref = ref_of(obj)
        self._check("create", ref)
        if ref in self.objects:
            raise KubeError(f"{ref} already exists (409)", "use replace")
        new = copy.deepcopy(obj)
        if ref.kind == "Pod":  # as an API server does: a new Pod is Pending until scheduled
            new.setdefault("status", {"phase": "Pending"})
        self._store(new)

    def replace(self, obj: Manifest) -> None:
        ref = ref_of(obj)
        self._check("replace", ref)
        cur = self.objects.get(ref)
        if cur is None:
            raise KubeError(f"{ref} not found (404)", "create it")
        rv = obj.get("metadata", {}).get("resourceVersion")
        if rv is not None and rv != cur["metadata"]["resourceVersion"]:
            raise KubeError(f"{ref} changed since it was read (409)", "plan again")
        new = copy.deepcopy(obj)
        new["metadata"]["uid"] = cur["metadata"]["uid"]
        self._store(new)

    def delete(self, ref: ObjRef) -> None:
        self._check("delete", ref)
        if self.objects.pop(ref, None) is None:
            raise KubeError(f"{ref} not found (404)", "nothing to delete")

    def step(self) -> None:
        """Move every scripted Pod that still exists to its next status (like time passing)."""
        for ref, statuses in self.script.items():
            if statuses and ref in self.objects:
                self.objects[ref]["status"] = copy.deepcopy(statuses.pop(0))

    def pod_log(self, ref: ObjRef, container: str, limit_bytes: int) -> str:
        self._check("log", ref)
        if ref not in self.objects:
            raise KubeError(f"{ref} not found (404)", "read the log before deleting the Pod")
        return self.logs.get(ref, "")[-limit_bytes:]

    def attach(self, namespace: str, pod: str) -> FakeAttach:
        ref = ObjRef("v1", "Pod", namespace, pod)
        self._check("attach", ref)
        obj = self.objects.get(ref)
        if obj is None or obj.get("status", {}).get("phase") != "Running":
            raise KubeError(f"{ref} is not running: cannot attach", "wait until it runs")
        return self.attachments.setdefault(ref, FakeAttach())

    def daemonset_names(self, namespace: str) -> tuple[str, ...]:
        return self.daemonsets.get(namespace, ())

    def run_ids(self, namespace: str) -> frozenset[str]:
        return frozenset(
            o["metadata"]["labels"]["stockade.dev/run-id"]
            for r, o in self.objects.items()
            if r.kind == "Pod"
            and r.namespace == namespace
            and "stockade.dev/run-id" in o["metadata"].get("labels", {})
        )


def _mcp_answer(msg: dict[str, Any]) -> dict[str, Any] | None:
    """A tiny MCP server: initialize, tools/list (one ``echo`` tool), tools/call echo."""
    if "id" not in msg:
        return None
    rid, method = msg["id"], msg.get("method")
    if method == "initialize":
        result: dict[str, Any] = {
            "protocolVersion": msg.get("params", {}).get("protocolVersion", "2025-11-25"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "fake-pod-echo", "version": "1"},
        }
    elif method == "tools/list":
        schema = {"type": "object", "properties": {"text": {"type": "string"}}}
        result = {"tools": [{"name": "echo", "description": "Echo text.", "inputSchema": schema}]}
    elif method == "tools/call" and msg.get("params", {}).get("name") == "echo":
        text = str(msg["params"].get("arguments", {}).get("text", ""))
        result = {"content": [{"type": "text", "text": text}], "isError": False}
    else:
        return {"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": "no such"}}
    return {"jsonrpc": "2.0", "id": rid, "result": result}


class FakeAttach:
    """A scripted attach stream: each complete stdin line goes to ``answer`` (default: a tiny
    MCP echo server), whose reply becomes stdout. ``stderr`` is emitted once at the first read;
    ``flood_stdout``/``flood_stderr`` bytes are offered (in 64 KiB reads) to test the bounds;
    with ``exit_after`` the server ends its output after that many answers."""

    def __init__(
        self,
        *,
        answer: Callable[[dict[str, Any]], dict[str, Any] | None] = _mcp_answer,
        stderr: bytes = b"",
        flood_stdout: int = 0,
        flood_stderr: int = 0,
        exit_after: int | None = None,
    ) -> None:
        self._answer = answer
        self._cond = threading.Condition()
        self._out = bytearray()
        self._err = bytearray(stderr)
        self._in = bytearray()
        self.flood_stdout = flood_stdout
        self.flood_stderr = flood_stderr
        self.stdout_offered = 0
        self.written = bytearray()
        self._open = True
        self.closed = False
        self.exit_after = exit_after
        self.stdin_closed = False

    def write(self, data: bytes) -> None:
        with self._cond:
            if not self._open:
                raise KubeError("attach write failed: closed", "see the Pod's status")
            self.written += data
            self._in += data
            while b"\n" in self._in:
                line, _, rest = bytes(self._in).partition(b"\n")
                self._in = bytearray(rest)
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                reply = self._answer(msg) if isinstance(msg, dict) else None
                if reply is not None:
                    self._out += json.dumps(reply).encode() + b"\n"
                    if self.exit_after is not None:
                        self.exit_after -= 1
                        if self.exit_after <= 0:  # the server exits after this answer
                            self._open = False
            self._cond.notify_all()

    def close_stdin(self) -> None:
        """Like a stdio MCP server: input EOF ends it (pending output stays readable)."""
        with self._cond:
            self.stdin_closed = True
            self._open = False
            self._cond.notify_all()

    def end(self) -> None:
        """The server exits: its output ends once read."""
        with self._cond:
            self._open = False
            self._cond.notify_all()

    def read_stdout(self, timeout_s: float) -> bytes:
        with self._cond:
            if self.flood_stdout > 0:
                n = min(self.flood_stdout, 65536)
                self.flood_stdout -= n
                self.stdout_offered += n
                return b"x" * n
            if self.flood_stderr > 0:
                return b""
            self._cond.wait_for(lambda: self._out or not self._open, timeout=timeout_s)
            data = bytes(self._out)
            self._out.clear()
            return data

    def read_stderr(self, timeout_s: float) -> bytes:
        with self._cond:
            if self.flood_stderr > 0:
                n = min(self.flood_stderr, 65536)
                self.flood_stderr -= n
                return b"e" * n
            data = bytes(self._err)
            self._err.clear()
            return data

    @property
    def is_open(self) -> bool:
        return self._open

    def close(self) -> None:
        with self._cond:
            self._open = False
            self.closed = True
            self._cond.notify_all()
