"""Rego for the cluster objects around a stockade Pod: the Namespace keeps Pod Security
``restricted`` and a NetworkPolicy in a stockade namespace can never widen egress or ingress.

Gatekeeper matches these on namespaces labelled ``app.kubernetes.io/managed-by: stockade``.
"""

from __future__ import annotations

import json

from ._rego import rego_source
from ._render import EGRESS_PROXY_LABELS

__all__ = ["NAMESPACE_PACKAGE", "NETPOL_PACKAGE", "namespace_module", "netpol_module"]

NAMESPACE_PACKAGE = "k8sstockadenamespace"
NETPOL_PACKAGE = "k8sstockadenetworkpolicy"


def namespace_module() -> str:
    return rego_source("namespace.rego")


def netpol_module() -> str:
    return rego_source("networkpolicy.rego").replace(
        "__PROXY_LABELS__", json.dumps(EGRESS_PROXY_LABELS)
    )
