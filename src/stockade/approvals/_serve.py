"""Serving the approval page with uvicorn on a loopback socket (never any other address)."""

from __future__ import annotations

import ipaddress
import socket
from types import TracebackType

from starlette.applications import Starlette

from stockade._serving import ThreadedServer
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
        self._server = ThreadedServer(app, sock, timeout_s=timeout_s)

    @property
    def port(self) -> int:
        return self._server.port

    def run(self) -> None:
        """Serve in the calling thread until interrupted."""
        self._server.run()

    def __enter__(self) -> PageServer:
        if not self._server.start():
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
        self._server.stop()
