"""Errors of the Kubernetes backend: a refusal always names the missing control."""

from __future__ import annotations

from stockade.errors import SandboxError

__all__ = ["KubeError", "PreflightError"]


class KubeError(SandboxError):
    """A manifest could not be rendered, planned or applied as the spec demands (refused)."""


class PreflightError(KubeError):
    """The cluster lacks a control the run needs (gVisor, Pod Security, NetworkPolicy)."""
