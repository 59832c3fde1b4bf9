"""Gateway-specific errors (all under :class:`stockade.errors.GatewayError`)."""

from __future__ import annotations

from stockade.errors import GatewayError

__all__ = [
    "ConfigError",
    "DownstreamError",
    "NamespaceError",
    "PinError",
    "ProtocolError",
]


class ConfigError(GatewayError):
    """The gateway configuration (servers, pins, limits) is invalid."""


class PinError(GatewayError):
    """A pin file is unreadable, malformed, or an approval does not match what is pending."""


class NamespaceError(GatewayError):
    """Two exposed tools would share a name, or a server/tool name is not namespaceable."""


class ProtocolError(GatewayError):
    """A peer sent something that is not acceptable JSON-RPC / MCP (malformed, oversized)."""


class DownstreamError(GatewayError):
    """A downstream server failed: exited, timed out, or answered with an error."""
