"""The :class:`ClusterApi` adapter over the official ``kubernetes`` Python client.

The only module here that talks to a cluster. Every call has a bounded timeout, and every API
failure becomes a :class:`KubeError` (a 404 on ``get`` is "absent", nothing else is).
"""

from __future__ import annotations

import threading
from typing import Any

from ._cluster import ObjRef, ref_of
from ._errors import KubeError
from ._names import LABEL_RUN
from ._render import Manifest

__all__ = ["KubernetesCluster", "WsAttach", "connect"]

TIMEOUT_S = 30
#: Longest a single websocket send or receive may block (the attach stream).
IO_TIMEOUT_S = 10.0


def _fail(op: str, what: str, e: Exception) -> KubeError:
    status = getattr(e, "status", None)
    reason = getattr(e, "reason", None) or type(e).__name__
    return KubeError(
        f"{op} {what} failed: {status or ''} {reason}".strip(),
        "check the kubeconfig context, your RBAC rights and the API server's reachability",
    )


class KubernetesCluster:
    """Dynamic-client access to exactly the kinds stockade renders."""

    def __init__(self, api_client: Any) -> None:
        from kubernetes import client, dynamic

        self._api = api_client
        self._apps = client.AppsV1Api(api_client)
        try:
            self._dyn = dynamic.DynamicClient(api_client)  # type: ignore[no-untyped-call]
        except (client.ApiException, OSError, ValueError) as e:
            raise _fail("API discovery", "of the cluster", e) from None

    def _resource(self, ref: ObjRef) -> Any:
        from kubernetes.dynamic.exceptions import (
            DynamicApiError,
            ResourceNotFoundError,
        )

        try:
            return self._dyn.resources.get(api_version=ref.api_version, kind=ref.kind)
        except (ResourceNotFoundError, DynamicApiError) as e:
            raise _fail("lookup of kind", f"{ref.api_version}/{ref.kind}", e) from None

    def _call(self, op: str, ref: ObjRef, fn: Any, **kw: Any) -> Any:
        from kubernetes import client
        from kubernetes.dynamic.exceptions import DynamicApiError

        ns = {"namespace": ref.namespace} if ref.namespace else {}
        try:
            return fn(_request_timeout=TIMEOUT_S, **ns, **kw)
        except (DynamicApiError, client.ApiException, OSError) as e:
            raise _fail(op, str(ref), e) from None

    def get(self, ref: ObjRef) -> Manifest | None:
        from kubernetes import client
        from kubernetes.dynamic.exceptions import DynamicApiError, NotFoundError

        res = self._resource(ref)
        ns = {"namespace": ref.namespace} if ref.namespace else {}
        try:
            obj = res.get(name=ref.name, _request_timeout=TIMEOUT_S, **ns)
        except NotFoundError:
            return None  # only a 404 means absent
        except (DynamicApiError, client.ApiException, OSError) as e:
            raise _fail("get", str(ref), e) from None
        out: Manifest = obj.to_dict()
        return out

    def create(self, obj: Manifest) -> None:
        ref = ref_of(obj)
        self._call("create", ref, self._resource(ref).create, body=obj)

    def replace(self, obj: Manifest) -> None:
        ref = ref_of(obj)
        self._call("replace", ref, self._resource(ref).replace, body=obj, name=ref.name)

    def delete(self, ref: ObjRef) -> None:
        self._call("delete", ref, self._resource(ref).delete, name=ref.name)

    def daemonset_names(self, namespace: str) -> tuple[str, ...]:
        from kubernetes import client

        try:
            items = self._apps.list_namespaced_daemon_set(namespace, _request_timeout=TIMEOUT_S)
        except (client.ApiException, OSError, ValueError) as e:  # ValueError: a malformed answer
            raise _fail("listing DaemonSets in", namespace, e) from None
        return tuple(sorted(str(d.metadata.name) for d in items.items if d.metadata))

    def pod_log(self, ref: ObjRef, container: str, limit_bytes: int) -> str:
        from kubernetes import client

        core = client.CoreV1Api(self._api)
        try:
            text = core.read_namespaced_pod_log(
                ref.name,
                ref.namespace,
                container=container,
                limit_bytes=limit_bytes,
                _request_timeout=TIMEOUT_S,
            )
        except (client.ApiException, OSError) as e:
            raise _fail("reading the log of", str(ref), e) from None
        return str(text)

    def run_ids(self, namespace: str) -> frozenset[str]:
        from kubernetes import client

        core = client.CoreV1Api(self._api)
        try:
            pods = core.list_namespaced_pod(
                namespace, label_selector=LABEL_RUN, _request_timeout=TIMEOUT_S
            )
        except (client.ApiException, OSError, ValueError) as e:  # ValueError: a malformed answer
            raise _fail("listing Pods in", namespace, e) from None
        return frozenset(
            p.metadata.labels[LABEL_RUN] for p in pods.items if p.metadata and p.metadata.labels
        )

    def attach(self, namespace: str, pod: str) -> WsAttach:
        from kubernetes import client
        from kubernetes.stream import stream

        core = client.CoreV1Api(self._api)
        try:
            ws = stream(
                core.connect_get_namespaced_pod_attach,
                pod,
                namespace,
                container="server",
                stdin=True,
                stdout=True,
                stderr=True,
                tty=False,
                binary=True,
                _preload_content=False,
            )
        except (client.ApiException, OSError, ValueError) as e:
            raise _fail("attaching to", f"Pod {namespace}/{pod}", e) from None
        return WsAttach(ws)


class WsAttach:
    """An :class:`AttachStream` over the client's ``WSClient`` (binary channels).

    Reads and ``close`` never run at the same time: the websocket library's ``close`` reads the
    peer's close reply itself, and a reader racing it could take those bytes and then wait on a
    socket that is being closed (seen against the loopback API double). Every socket operation
    is also bounded by ``io_timeout_s`` (a frame that never completes is an error, not a hang).
    """

    def __init__(self, ws: Any, *, io_timeout_s: float = IO_TIMEOUT_S) -> None:
        self._ws = ws
        self._io_timeout = io_timeout_s
        self._read_lock = threading.Lock()
        sock = getattr(ws, "sock", None)
        if sock is not None and hasattr(sock, "settimeout"):
            sock.settimeout(io_timeout_s)

    def _guard(self, op: str, fn: Any, *args: Any) -> Any:
        from websocket import WebSocketException

        try:
            return fn(*args)
        except (WebSocketException, OSError, ValueError) as e:
            raise KubeError(
                f"attach {op} failed: {type(e).__name__}", "see the Pod's status"
            ) from None

    def write(self, data: bytes) -> None:
        self._guard("write", self._ws.write_stdin, data)

    def close_stdin(self) -> None:
        # The v5.channel.k8s.io close signal; with an older subprotocol the client does nothing
        # and the server sees EOF only when the attach closes.
        self._guard("stdin close", self._ws.close_channel, 0)

    def read_stdout(self, timeout_s: float) -> bytes:
        with self._read_lock:
            if not self._ws.is_open() and not self._ws.peek_stdout():
                return b""
            return bytes(self._guard("read", self._ws.read_stdout, timeout_s) or b"")

    def read_stderr(self, timeout_s: float) -> bytes:
        with self._read_lock:
            if not self._ws.is_open() and not self._ws.peek_stderr():
                return b""
            return bytes(self._guard("read", self._ws.read_stderr, timeout_s) or b"")

    @property
    def is_open(self) -> bool:
        return bool(self._ws.is_open())

    def close(self) -> None:
        # A reader holds the lock for at most one bounded read; close anyway if it does not
        # let go (the socket timeout bounds that read too).
        got = self._read_lock.acquire(timeout=self._io_timeout + 1)
        try:
            self._guard("close", self._ws.close)
        finally:
            if got:
                self._read_lock.release()


def connect(kubeconfig: str | None, context: str | None) -> KubernetesCluster:
    """A client for the kubeconfig's (or the given) context; refused when there is none."""
    from kubernetes import config
    from kubernetes.config.config_exception import ConfigException

    try:
        api_client = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, context=context, persist_config=False
        )
    except (ConfigException, OSError, ValueError) as e:
        raise KubeError(
            f"cannot load a kubeconfig ({kubeconfig or '~/.kube/config'}): {e}",
            "pass --kubeconfig/--context, or set KUBECONFIG",
        ) from None
    return KubernetesCluster(api_client)
