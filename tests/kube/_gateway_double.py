"""Test double: ``stockade`` with its cluster replaced by an in-memory one whose Pods run a real
MCP server process (run as a script by the gateway tests; never a real cluster).

``python _gateway_double.py STATE_DIR [--verified DIGEST] -- ARGV...`` runs ``stockade ARGV``
with ``stockade.cli._k8s``'s cluster adapter replaced by :class:`ProcessCluster` (a
``FakeCluster`` with gVisor and Calico, where a created Pod is at once ``Running`` and attaching
to it starts ``tests/gateway/servers/sdk_echo.py`` with pipes as its stdio). With
``--verified DIGEST`` the registry side of the supply-chain gate is replaced by its result (the
tests of the gate itself run it for real); without it the real gate runs. Every created object
is appended to ``STATE_DIR/created.jsonl`` and the objects left at exit go to
``STATE_DIR/final.json``. When ARGV has ``--kubeconfig``, the cluster adapter is not replaced:
the real ``kubernetes`` client talks to whatever that kubeconfig names (the tests' loopback
ApiServerDouble).
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

from stockade.kube import Manifest, runtime_class
from stockade.testing import FakeCluster

SERVER = Path(__file__).resolve().parents[1] / "gateway" / "servers" / "sdk_echo.py"
_JOIN_S = 10.0


class ProcessAttach:
    """An ``AttachStream`` over a real child process's pipes (the "Pod's" stdio)."""

    def __init__(self, argv: list[str]) -> None:
        self._proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self._out: queue.Queue[bytes] = queue.Queue()
        self._err: queue.Queue[bytes] = queue.Queue()
        self._eof = threading.Event()
        assert self._proc.stdout is not None
        assert self._proc.stderr is not None
        self._threads = [
            threading.Thread(target=self._drain, args=(self._proc.stdout, self._out, True)),
            threading.Thread(target=self._drain, args=(self._proc.stderr, self._err, False)),
        ]
        for t in self._threads:
            t.start()

    def _drain(self, pipe: IO[bytes], into: queue.Queue[bytes], main: bool) -> None:
        while chunk := pipe.read1(65536):  # type: ignore[attr-defined]
            into.put(chunk)
        if main:
            self._eof.set()

    def write(self, data: bytes) -> None:
        from stockade.kube import KubeError

        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(data)
            self._proc.stdin.flush()
        except (BrokenPipeError, ValueError) as e:
            raise KubeError(f"attach write failed: {e}", "see the Pod's status") from e

    def close_stdin(self) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()

    def read_stdout(self, timeout_s: float) -> bytes:
        return _take(self._out, timeout_s)

    def read_stderr(self, timeout_s: float) -> bytes:
        return _take(self._err, timeout_s)

    @property
    def is_open(self) -> bool:
        return not self._eof.is_set() or not self._out.empty()

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()  # our own child, by its handle
        self._proc.wait(timeout=_JOIN_S)
        for t in self._threads:
            t.join(timeout=_JOIN_S)
        for pipe in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
            if pipe is not None and not pipe.closed:
                pipe.close()


def _take(q: queue.Queue[bytes], timeout_s: float) -> bytes:
    try:
        first = q.get(timeout=timeout_s) if timeout_s > 0 else q.get_nowait()
    except queue.Empty:
        return b""
    parts = [first]
    while not q.empty():
        parts.append(q.get_nowait())
    return b"".join(parts)


class ProcessCluster(FakeCluster):
    """A FakeCluster whose Pods start Running and run the real MCP server when attached."""

    def __init__(self, state: Path) -> None:
        super().__init__(daemonsets={"kube-system": ("calico-node", "kube-proxy")})
        self.put(runtime_class())
        self.state = state
        self.streams: list[ProcessAttach] = []

    def create(self, obj: Manifest) -> None:
        super().create(obj)
        with (self.state / "created.jsonl").open("a", encoding="utf-8") as f:
            f.write(json.dumps(obj) + "\n")
        if obj["kind"] == "Pod":  # scheduled and started at once
            key = next(
                r for r in self.objects if r.kind == "Pod" and r.name == obj["metadata"]["name"]
            )
            self.objects[key]["status"] = {"phase": "Running"}

    def attach(self, namespace: str, pod: str) -> Any:
        super().attach(namespace, pod)  # the Pod must exist and be Running
        stream = ProcessAttach([sys.executable, str(SERVER)])
        self.streams.append(stream)
        return stream

    def finish(self) -> None:
        for s in self.streams:
            s.close()
        left = [{"kind": r.kind, "namespace": r.namespace, "name": r.name} for r in self.objects]
        (self.state / "final.json").write_text(json.dumps(left), encoding="utf-8")


def main(args: list[str]) -> None:
    import stockade.cli._k8s as k8s_cli
    from stockade.cli import main as stockade_main

    sep = args.index("--")
    state, opts, argv = Path(args[0]), args[1:sep], args[sep + 1 :]
    cluster = ProcessCluster(state)
    if "--kubeconfig" not in argv:  # else the real client adapter talks to that API server
        k8s_cli._connect = lambda kubeconfig, context: cluster  # type: ignore[assignment]
        k8s_cli._connect_run = lambda kubeconfig, context: cluster  # type: ignore[assignment]
    k8s_cli._wait = lambda s: threading.Event().wait(min(s, 0.05))  # type: ignore[assignment]
    if opts[:1] == ["--verified"]:
        digest = opts[1]

        def verified(policy: Any, server: str, *_: Any) -> tuple[str, dict[str, Any]]:
            ref = str(policy.server(server).image).partition("@")[0] + "@" + digest
            return digest, {"reference": ref, "digest": digest, "image": {"reference": ref}}

        k8s_cli._verify_image = verified  # type: ignore[assignment]
    try:
        stockade_main(argv)
    finally:
        cluster.finish()


if __name__ == "__main__":
    main(sys.argv[1:])
