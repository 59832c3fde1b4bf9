"""Errors of the approvals part (all under :class:`stockade.errors.ApprovalError`)."""

from __future__ import annotations

from stockade.errors import ApprovalError

__all__ = [
    "ApprovalNotFound",
    "BindingMismatch",
    "IllegalTransition",
    "InterceptError",
    "LoginRefused",
]


class IllegalTransition(ApprovalError):
    """An event that the transition table does not allow from the request's current state."""


class BindingMismatch(ApprovalError):
    """An approval is used for a call (or under a policy) other than the one it was bound to."""


class ApprovalNotFound(ApprovalError):
    """No approval request with that id."""


class LoginRefused(ApprovalError):
    """An approval-page login token, session or CSRF token was missing or wrong."""


class InterceptError(ApprovalError):
    """A Docker MCP Gateway interceptor input could not be read as a tools/call."""
