"""The Rego module behind the Gatekeeper export: stockade's Pod rules for a cluster to enforce.

Violation messages start with the admission check id they mirror (``stockade_runtimeClass: ...``)
so tests can compare the two engines check by check. Written in Rego v1 syntax (``import rego.v1``
is accepted by OPA 0.59+ and by OPA 1.x). The lists come from the admission validator's own
constants, so the two cannot drift apart.
"""

from __future__ import annotations

import json
from importlib import resources

from stockade.admission import RESTRICTED_VOLUME_SOURCES, SAFE_SYSCTLS, SELINUX_TYPES

__all__ = ["REGO_PACKAGE", "rego_module", "rego_source"]

REGO_PACKAGE = "k8sstockadepod"


def _set(values: frozenset[str]) -> str:
    return "{" + ", ".join(json.dumps(v) for v in sorted(values)) + "}"


def rego_source(name: str) -> str:
    return resources.files(__package__).joinpath("rego", name).read_text(encoding="utf-8")


def rego_module() -> str:
    """The Rego source (package :data:`REGO_PACKAGE`), one ``violation`` set of ``{"msg"}``."""
    volume_keys = RESTRICTED_VOLUME_SOURCES | {"name"}
    return (
        rego_source("pod.rego")
        .replace("__PACKAGE__", REGO_PACKAGE)
        .replace("__SELINUX_TYPES__", _set(SELINUX_TYPES))
        .replace("__SAFE_SYSCTLS__", _set(SAFE_SYSCTLS))
        .replace("__VOLUME_KEYS__", _set(volume_keys))
    )
