"""The HTTP control API (ASGI, Starlette) behind mutual TLS; see docs/api.md.

``build_app(ControlPlane(...))`` returns the app; ``ApiServer(app, listen(host, port), tls)``
serves it with a context from :func:`stockade.identity.server_context`.
"""

from ._app import PEER_SCOPE_KEY, build_app, with_peer
from ._deps import ControlPlane, ReadinessCheck, RunStopper
from ._errors import ApiError, BadRequestError
from ._metrics import Metrics, render_approval_metrics, render_store_metrics
from ._openapi import openapi_document
from ._ratelimit import Limiter
from ._ready import audit_ready, gvisor_ready, store_ready
from ._revocations import StoreRevocations
from ._rotation import CertificateRotation
from ._server import ApiServer, listen
from ._stop import RecordingStopper, StoreStopCheck

__all__ = [
    "PEER_SCOPE_KEY",
    "ApiError",
    "ApiServer",
    "BadRequestError",
    "CertificateRotation",
    "ControlPlane",
    "Limiter",
    "Metrics",
    "ReadinessCheck",
    "RecordingStopper",
    "RunStopper",
    "StoreRevocations",
    "StoreStopCheck",
    "audit_ready",
    "build_app",
    "gvisor_ready",
    "listen",
    "openapi_document",
    "render_approval_metrics",
    "render_store_metrics",
    "store_ready",
    "with_peer",
]
