"""Preflight: refuse to launch on a cluster that lacks a control the run needs (pure).

Facts are gathered by the adapter; this module decides. Every refusal names the control.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._errors import PreflightError
from ._render import PSA_LABELS, RUNTIME_CLASS, RUNTIME_HANDLER, Manifest

__all__ = [
    "ENFORCING_CNI",
    "NON_ENFORCING_CNI",
    "Facts",
    "networkpolicy_enforced",
    "preflight",
    "problems",
]

#: DaemonSets (kube-system) of network plugins that enforce NetworkPolicy, by name prefix.
ENFORCING_CNI = (
    "calico-node",
    "cilium",
    "antrea-agent",
    "kube-router",
    "weave-net",
    "canal",
    "kube-ovn-cni",
)
#: Plugins known not to enforce NetworkPolicy on their own.
NON_ENFORCING_CNI = ("kube-flannel-ds", "flannel")


@dataclass(frozen=True)
class Facts:
    runtime_class: Manifest | None
    namespace: Manifest | None
    daemonsets: tuple[str, ...]
    #: The operator asserts NetworkPolicy is enforced where stockade cannot tell (logged).
    unsafe_assume_networkpolicy: bool = False


def networkpolicy_enforced(daemonsets: tuple[str, ...]) -> bool | None:
    """True/False when a known plugin is found; None when stockade cannot tell."""
    if any(d.startswith(ENFORCING_CNI) for d in daemonsets):
        return True
    if any(d.startswith(NON_ENFORCING_CNI) for d in daemonsets):
        return False
    return None


def problems(f: Facts) -> tuple[str, ...]:
    out: list[str] = []
    rc = f.runtime_class
    if rc is None:
        out.append(f"the cluster has no RuntimeClass {RUNTIME_CLASS!r} (got none)")
    elif rc.get("handler") != RUNTIME_HANDLER:
        out.append(
            f"RuntimeClass {RUNTIME_CLASS!r} uses handler {rc.get('handler')!r}, expected "
            f"{RUNTIME_HANDLER!r}"
        )
    labels = (f.namespace or {}).get("metadata", {}).get("labels", {})
    if f.namespace is None:
        out.append("the namespace does not exist (got none, expected it enforcing restricted)")
    else:
        for key, want in PSA_LABELS.items():
            if key.endswith("/enforce") and labels.get(key) != want:
                out.append(
                    f"the namespace does not enforce Pod Security restricted (got {key}="
                    f"{labels.get(key)!r})"
                )
    enforced = networkpolicy_enforced(f.daemonsets)
    if enforced is False:
        out.append(
            "the network plugin does not enforce NetworkPolicy (found flannel without a "
            "policy agent); the run's egress control would be ignored"
        )
    elif enforced is None and not f.unsafe_assume_networkpolicy:
        out.append(
            "cannot tell whether the network plugin enforces NetworkPolicy (no known "
            "plugin DaemonSet in kube-system); egress control cannot be assured"
        )
    return tuple(out)


def preflight(f: Facts) -> None:
    """Raise :class:`PreflightError` naming every missing control (fail closed)."""
    found = problems(f)
    if found:
        raise PreflightError(
            "refusing to launch: " + "; ".join(found),
            "install gVisor and `stockade k8s render`'s RuntimeClass (handler runsc), keep the "
            "namespace at pod-security.kubernetes.io/enforce=restricted, and use a network "
            "plugin that enforces NetworkPolicy (or pass --unsafe-assume-networkpolicy if you "
            "have verified it yourself)",
        )
