"""ApiServerDouble: a loopback HTTP server answering just the Kubernetes REST calls stockade's
adapter (``stockade.kube._client``) makes, so the official ``kubernetes`` client's own discovery,
URL building, serialisation and error handling run for real. It is a test double, not an API
server: no admission, defaulting, scheduling, authentication or watch; objects live in a dict.

Served: ``/version``, discovery (``/apis``, ``/api/v1``, ``/apis/GROUP/VERSION``) for the kinds
stockade renders plus DaemonSets, and for each kind GET (item and list, with an existence or
equality ``labelSelector``), POST (409 when it exists), PUT (404 when absent, 409 on a stale
``resourceVersion``), DELETE, and ``GET .../pods/NAME/log`` (``container``, ``limitBytes``).
``fail`` maps (method, path) to a status to inject API errors. Every request is recorded.

Attach: ``GET .../pods/NAME/attach`` with a websocket upgrade speaks the channel protocol
(``v5.channel.k8s.io``, else ``v4``): binary messages prefixed by a channel byte (0 stdin,
1 stdout, 2 stderr, 3 status; v5: ``255, ch`` closes a channel). Behind it runs ``attach_argv``
as a real child process (e.g. a Python MCP server), its pipes as the "container's" stdio. With
``run_pods`` a created Pod is at once ``Running``.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import http.server
import json
import socket
import struct
import subprocess
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

# (group/version, resource, kind, namespaced)
KINDS = [
    ("v1", "namespaces", "Namespace", False),
    ("v1", "pods", "Pod", True),
    ("v1", "secrets", "Secret", True),
    ("v1", "services", "Service", True),
    ("v1", "configmaps", "ConfigMap", True),
    ("v1", "resourcequotas", "ResourceQuota", True),
    ("v1", "limitranges", "LimitRange", True),
    ("apps/v1", "deployments", "Deployment", True),
    ("apps/v1", "daemonsets", "DaemonSet", True),
    ("networking.k8s.io/v1", "networkpolicies", "NetworkPolicy", True),
    ("node.k8s.io/v1", "runtimeclasses", "RuntimeClass", False),
]
_BY_RESOURCE = {(gv, r): (k, ns) for gv, r, k, ns in KINDS}
_VERBS = ["create", "delete", "get", "list", "update", "patch", "watch"]

Key = tuple[str, str, str, str]  # group/version, resource, namespace, name


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


class ApiServerDouble:
    def __init__(self) -> None:
        self.objects: dict[Key, dict[str, Any]] = {}
        self.logs: dict[tuple[str, str], str] = {}
        self.requests: list[tuple[str, str, dict[str, list[str]]]] = []
        self.fail: dict[tuple[str, str], int] = {}
        self.run_pods = False
        #: every object created through POST, as stored (deleted ones included)
        self.created: list[dict[str, Any]] = []
        self.attach_argv: list[str] | None = None
        #: (path, query, chosen subprotocol) of every attach
        self.attaches: list[tuple[str, dict[str, list[str]], str]] = []
        self._version = 0
        self._lock = threading.Lock()

    # -- seeding ----------------------------------------------------------------------------------

    def put(self, obj: dict[str, Any]) -> None:
        gv = obj["apiVersion"]
        resource = next(r for g, r, k, _ in KINDS if g == gv and k == obj["kind"])
        meta = obj["metadata"]
        with self._lock:
            self._store((gv, resource, meta.get("namespace", ""), meta["name"]), obj)

    def _store(self, key: Key, obj: dict[str, Any]) -> dict[str, Any]:
        self._version += 1
        new = copy.deepcopy(obj)
        meta = new.setdefault("metadata", {})
        meta["resourceVersion"] = str(self._version)
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
        if new.get("kind") == "Pod":
            new.setdefault("status", {"phase": "Running" if self.run_pods else "Pending"})
        self.objects[key] = new
        return new

    # -- routing ----------------------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, body: bytes) -> tuple[int, str, bytes]:
        parts = urlsplit(raw_path)
        path, query = parts.path, parse_qs(parts.query)
        with self._lock:
            self.requests.append((method, path, query))
            if (method, path) in self.fail:
                code = self.fail[(method, path)]
                return self._json(code, _status(code, "Injected", f"injected {code}"))
            if path == "/version":
                return self._json(200, {"major": "1", "minor": "37", "gitVersion": "v1.37.0"})
            if path == "/apis":
                return self._json(200, self._groups())
            if path == "/api":
                return self._json(200, {"kind": "APIVersions", "versions": ["v1"]})
            return self._resource_call(method, path, query, body)

    def _groups(self) -> dict[str, Any]:
        groups = sorted({gv for gv, *_ in KINDS if "/" in gv})
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [
                {
                    "name": gv.split("/")[0],
                    "versions": [{"groupVersion": gv, "version": gv.split("/")[1]}],
                    "preferredVersion": {"groupVersion": gv, "version": gv.split("/")[1]},
                }
                for gv in groups
            ],
        }

    def _resource_list(self, gv: str) -> dict[str, Any]:
        resources = [
            {"name": r, "singularName": k.lower(), "namespaced": ns, "kind": k, "verbs": _VERBS}
            for g, r, k, ns in KINDS
            if g == gv
        ]
        if gv == "v1":
            resources += [
                {"name": "pods/log", "namespaced": True, "kind": "Pod", "verbs": ["get"]},
                {
                    "name": "pods/attach",
                    "namespaced": True,
                    "kind": "PodAttachOptions",
                    "verbs": ["create", "get"],
                },
            ]
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": gv,
            "resources": resources,
        }

    def _resource_call(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes
    ) -> tuple[int, str, bytes]:
        segs = [s for s in path.split("/") if s]
        if segs[:2] == ["api", "v1"]:
            gv, rest = "v1", segs[2:]
        elif segs[:1] == ["apis"] and len(segs) >= 3:
            gv, rest = f"{segs[1]}/{segs[2]}", segs[3:]
        else:
            return self._json(404, _status(404, "NotFound", f"no route {path}"))
        if not rest:
            return self._json(200, self._resource_list(gv))
        ns = ""
        if rest[0] == "namespaces" and len(rest) >= 3:
            ns, rest = rest[1], rest[2:]
        resource, name = rest[0], (rest[1] if len(rest) > 1 else "")
        sub = rest[2] if len(rest) > 2 else ""
        if (gv, resource) not in _BY_RESOURCE:
            return self._json(404, _status(404, "NotFound", f"no resource {gv}/{resource}"))
        kind, _ = _BY_RESOURCE[(gv, resource)]
        key = (gv, resource, ns, name)
        if sub == "log" and method == "GET":
            if key not in self.objects:
                return self._json(404, _status(404, "NotFound", f"pods {name!r} not found"))
            text = self.logs.get((ns, name), "")
            limit = int(query.get("limitBytes", ["0"])[0] or 0)
            data = text.encode()[-limit:] if limit else text.encode()
            return 200, "text/plain", data
        if not name:
            if method == "GET":
                return self._json(200, self._list(gv, resource, kind, ns, query))
            if method == "POST":
                obj = json.loads(body)
                key = (gv, resource, ns, obj["metadata"]["name"])
                if key in self.objects:
                    return self._json(409, _status(409, "AlreadyExists", f"{kind} exists"))
                stored = self._store(key, obj)
                self.created.append(copy.deepcopy(stored))
                return self._json(201, stored)
        cur = self.objects.get(key)
        if method == "GET":
            if cur is None:
                return self._json(404, _status(404, "NotFound", f"{resource} {name!r} not found"))
            return self._json(200, cur)
        if method == "PUT":
            obj = json.loads(body)
            if cur is None:
                return self._json(404, _status(404, "NotFound", f"{resource} {name!r} not found"))
            rv = obj.get("metadata", {}).get("resourceVersion")
            if rv is not None and rv != cur["metadata"]["resourceVersion"]:
                return self._json(409, _status(409, "Conflict", "the object has been modified"))
            obj["metadata"]["uid"] = cur["metadata"]["uid"]
            return self._json(200, self._store(key, obj))
        if method == "DELETE":
            if self.objects.pop(key, None) is None:
                return self._json(404, _status(404, "NotFound", f"{resource} {name!r} not found"))
            return self._json(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})
        return self._json(405, _status(405, "MethodNotAllowed", method))

    def _list(
        self, gv: str, resource: str, kind: str, ns: str, query: dict[str, list[str]]
    ) -> dict[str, Any]:
        selector = query.get("labelSelector", [""])[0]
        label, _, value = selector.partition("=")
        items = []
        for (g, r, n, _), obj in sorted(self.objects.items()):
            if g != gv or r != resource or (ns and n != ns):
                continue
            labels = obj["metadata"].get("labels") or {}
            if label and (label not in labels or (value and labels[label] != value)):
                continue
            items.append(obj)
        return {
            "kind": f"{kind}List",
            "apiVersion": gv,
            "metadata": {"resourceVersion": str(self._version)},
            "items": items,
        }

    @staticmethod
    def _json(code: int, obj: Any) -> tuple[int, str, bytes]:
        return code, "application/json", json.dumps(obj).encode()


_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_STDIN, _STDOUT, _STDERR, _STATUS, _CLOSE = 0, 1, 2, 3, 255


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("the client closed the websocket")
        buf += chunk
    return buf


def _recv_frame(sock: socket.socket) -> tuple[int, bytes]:
    b0, b1 = _recv_exact(sock, 2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack(">H", _recv_exact(sock, 2))[0]
    elif n == 127:
        n = struct.unpack(">Q", _recv_exact(sock, 8))[0]
    mask = _recv_exact(sock, 4) if b1 & 0x80 else b""
    data = _recv_exact(sock, n)
    if mask:
        data = bytes(c ^ mask[i % 4] for i, c in enumerate(data))
    return b0 & 0x0F, data


class _Frames:
    """Server-side frame writer (unmasked, one lock: two pump threads write)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock, self._lock = sock, threading.Lock()

    def send(self, opcode: int, data: bytes) -> None:
        n = len(data)
        if n < 126:
            head = bytes([0x80 | opcode, n])
        elif n < 1 << 16:
            head = bytes([0x80 | opcode, 126]) + struct.pack(">H", n)
        else:
            head = bytes([0x80 | opcode, 127]) + struct.pack(">Q", n)
        with self._lock:
            self._sock.sendall(head + data)


def _attach(double: ApiServerDouble, handler: http.server.BaseHTTPRequestHandler) -> None:
    """Upgrade to a websocket and bridge the channels to a new ``attach_argv`` process."""
    offered = [p.strip() for p in handler.headers.get("Sec-WebSocket-Protocol", "").split(",")]
    proto = next(p for p in ("v5.channel.k8s.io", "v4.channel.k8s.io") if p in offered)
    parts = urlsplit(handler.path)
    with double._lock:
        double.attaches.append((parts.path, parse_qs(parts.query), proto))
    key = handler.headers["Sec-WebSocket-Key"]
    accept = base64.b64encode(hashlib.sha1((key + _WS_GUID).encode()).digest()).decode()  # noqa: S324 - RFC 6455
    handler.wfile.write(
        (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: {proto}\r\n\r\n"
        ).encode()
    )
    handler.wfile.flush()
    handler.close_connection = True
    sock = handler.connection
    frames = _Frames(sock)
    assert double.attach_argv is not None, "set attach_argv to attach"
    proc = subprocess.Popen(
        double.attach_argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    assert proc.stderr is not None

    def pump(pipe: Any, channel: int) -> None:
        try:
            while chunk := pipe.read1(65536):
                frames.send(0x2, bytes([channel]) + chunk)
            if channel == _STDOUT:  # the container ended: status, then close
                proc.wait(timeout=10)
                status = {"metadata": {}, "status": "Success"}
                frames.send(0x2, bytes([_STATUS]) + json.dumps(status).encode())
                frames.send(0x8, struct.pack(">H", 1000))
        except OSError:
            return

    threads = [
        threading.Thread(target=pump, args=(proc.stdout, _STDOUT), daemon=True),
        threading.Thread(target=pump, args=(proc.stderr, _STDERR), daemon=True),
    ]
    for t in threads:
        t.start()
    try:
        while True:
            opcode, data = _recv_frame(sock)
            if opcode == 0x8:
                break
            if opcode == 0x9:
                frames.send(0xA, data)
            elif opcode in (0x1, 0x2) and data[:1] == bytes([_STDIN]):
                proc.stdin.write(data[1:])
                proc.stdin.flush()
            elif opcode == 0x2 and data == bytes([_CLOSE, _STDIN]):
                proc.stdin.close()
    except (OSError, ValueError):
        pass
    finally:
        if proc.poll() is None:
            proc.kill()  # our own child, by its handle
        proc.wait(timeout=10)
        for t in threads:
            t.join(10)
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if not pipe.closed:
                pipe.close()


def _handler(double: ApiServerDouble) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()  # headers and body are two writes: no Nagle delay between them
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _serve(self) -> None:
            if self.headers.get("Upgrade", "").lower() == "websocket" and "/attach" in self.path:
                _attach(double, self)
                return
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            code, ctype, data = double.handle(self.command, self.path, body)
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        def log_message(self, *args: Any) -> None:
            return

    return Handler


@contextmanager
def serve(double: ApiServerDouble, tmp: Path) -> Iterator[Path]:
    """Serve ``double`` on 127.0.0.1; yields a kubeconfig pointing at it (plain HTTP)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(double))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    port = server.server_address[1]
    kubeconfig = tmp / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "double", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                "users": [{"name": "tester", "user": {"token": "test-token"}}],
                "contexts": [
                    {"name": "double", "context": {"cluster": "double", "user": "tester"}}
                ],
                "current-context": "double",
            }
        )
    )
    try:
        yield kubeconfig
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
