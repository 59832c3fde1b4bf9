"""Serving the control API over mutual TLS (TLS 1.3 only) with uvicorn.

The TLS handshake (client certificate required, chained to the stockade CA, not on its CRL)
completes before a connection reaches HTTP; the protocol below then maps the verified peer
certificate to a :class:`~stockade.identity.PeerIdentity` and hands it to every request of that
connection. A certificate without exactly one known role gives no identity (the app answers 401).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol

from stockade._serving import ThreadedServer
from stockade.errors import IdentityError
from stockade.identity import PeerIdentity, peer_identity

from ._app import with_peer
from ._errors import ApiError

__all__ = ["ApiServer", "listen"]


class _PeerProtocol(H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        peer: PeerIdentity | None
        try:
            peer = peer_identity(transport.get_extra_info("ssl_object"))
        except IdentityError:
            peer = None
        self.app = with_peer(self.app, peer)


def listen(host: str, port: int) -> socket.socket:
    """Bind a listening TCP socket (IPv4 or IPv6 literal or name)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, _, _, _, addr = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(128)
    except OSError as e:
        raise ApiError(
            f"cannot listen on {host}:{port}: {e.strerror}", "pick another --host/--port"
        ) from e
    return sock


class ApiServer:
    """The app behind mTLS on ``sock``; ``run()`` in this thread or ``with`` in a background one."""

    def __init__(
        self, app: ASGIApp, sock: socket.socket, tls: ssl.SSLContext, timeout_s: float = 10.0
    ) -> None:
        if tls.verify_mode != ssl.CERT_REQUIRED or tls.minimum_version != ssl.TLSVersion.TLSv1_3:
            raise ApiError(
                "the control API needs a TLS 1.3-only context that requires client certificates",
                "build it with stockade.identity.server_context",
            )
        self._tls = tls
        factory: Callable[[Any, Any], ssl.SSLContext] = lambda _cfg, _default: tls  # noqa: E731
        self._server = ThreadedServer(
            app, sock, timeout_s=timeout_s, http=_PeerProtocol, ssl_context_factory=factory
        )

    @property
    def port(self) -> int:
        return self._server.port

    def rotate(self, cert: Path, key: Path, crl: Path | None = None) -> None:
        """Serve new handshakes with ``cert``/``key`` (and also honour ``crl``), in place.

        Open connections keep their session (nothing is dropped); each new handshake uses the new
        certificate. OpenSSL calls on the context run under the GIL, so a handshake never sees a
        half-loaded pair. A pair that does not load leaves the old one serving and raises.
        """
        try:
            self._tls.load_cert_chain(certfile=str(cert), keyfile=str(key))
            if crl is not None:
                self._tls.load_verify_locations(cafile=str(crl))
        except (OSError, ssl.SSLError) as e:
            raise ApiError(
                f"cannot rotate to {cert} / {key}: {e}", "check the new certificate and key match"
            ) from e

    def run(self) -> None:
        self._server.run()

    def __enter__(self) -> ApiServer:
        if not self._server.start():
            raise ApiError("the control API did not start", "see the log above")
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()
