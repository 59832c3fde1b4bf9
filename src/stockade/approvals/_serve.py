"""Serving the approval page with uvicorn on a loopback socket (never any other address)."""

from __future__ import annotations

import ipaddress
import socket
import threading
from types import TracebackType

import uvicorn
from starlette.applications import Starlette

from stockade.errors import ApprovalError

__all__ = ["PageServer", "loopback_socket"]


def loopback_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening TCP socket on a loopback address; anything else is refused."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError as e:
        raise ApprovalError(
            f"approval page host must be an IP address, got {host!r}", "use 127.0.0.1 (or ::1)"
        ) from e
    if not ip.is_loopback:
        raise ApprovalError(
            f"approval page would listen on {host}, a non-loopback address",
            "serve it on 127.0.0.1 and reach it through an SSH tunnel or an authenticated proxy",
        )
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(64)
    except OSError as e:
        sock.close()
        raise ApprovalError(
            f"cannot listen on {host}:{port}: {e.strerror}", "pick another --port"
        ) from e
    return sock


class PageServer:
    """Runs the app on ``sock`` in a thread (``with PageServer(app, sock): ...``); bounded start
    and stop."""

    def __init__(self, app: Starlette, sock: socket.socket, timeout_s: float = 10.0) -> None:
        self._sock = sock
        self._timeout = timeout_s
        config = uvicorn.Config(
            app,
            log_level="warning",
            lifespan="off",
            ws="none",
            access_log=False,
            server_header=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    def run(self) -> None:
        """Serve in the calling thread until interrupted."""
        self._server.run(sockets=[self._sock])

    def __enter__(self) -> PageServer:
        self._thread.start()
        ready = threading.Event()
        for _ in range(int(self._timeout / 0.02)):
            if self._server.started or not self._thread.is_alive():
                break
            ready.wait(0.02)
        if not self._server.started:
            self._stop()
            raise ApprovalError("the approval page did not start", "see the log above")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop()

    def _stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(self._timeout)
        self._sock.close()
