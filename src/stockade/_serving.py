"""One uvicorn server on a socket we already bound, run in a background thread with a bounded start
and stop. The control API (mTLS) and the approval page (loopback) both serve this way; each owner
checks its own preconditions and raises its own error when the server does not come up.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

import uvicorn

__all__ = ["ThreadedServer"]

_POLL_S = 0.02


class ThreadedServer:
    """``app`` on ``sock``: ``start()`` in a daemon thread (bounded), ``stop()``, or ``run()`` here.

    Quiet and minimal by default: warnings only, no lifespan, no websockets, no access log, no
    ``Server`` header. ``config`` adds uvicorn settings (protocol class, TLS context factory).
    """

    def __init__(
        self, app: Any, sock: socket.socket, *, timeout_s: float = 10.0, **config: Any
    ) -> None:
        self._sock = sock
        self._timeout = timeout_s
        settings: dict[str, Any] = {
            "log_level": "warning",
            "lifespan": "off",
            "ws": "none",
            "access_log": False,
            "server_header": False,
        }
        settings.update(config)
        self._server = uvicorn.Server(uvicorn.Config(app, **settings))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    def run(self) -> None:
        """Serve in the calling thread until interrupted."""
        self._server.run(sockets=[self._sock])

    def start(self) -> bool:
        """Serve in the background; True once serving, False (all stopped) if it did not start
        within the timeout."""
        self._thread.start()
        ready = threading.Event()
        for _ in range(int(self._timeout / _POLL_S)):
            if self._server.started or not self._thread.is_alive():
                break
            ready.wait(_POLL_S)
        if not self._server.started:
            self.stop()
            return False
        return True

    def stop(self) -> None:
        """Ask the server to exit, wait for its thread (bounded) and close the socket."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=self._timeout)
        self._sock.close()
