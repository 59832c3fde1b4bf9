"""Export stockade's rules as Kyverno ClusterPolicies (kyverno.io/v1).

Pod Security ``restricted`` is Kyverno's own ``podSecurity`` subrule; stockade's extra rules are
patterns and deny conditions. Not executed here (no Kyverno engine is available); the tests check
the structure against the CRD fields used and that every admission check is covered.
"""

from __future__ import annotations

from ._gatekeeper import ExportParams
from ._names import LABEL_MANAGED
from ._render import EGRESS_PROXY_LABELS, Manifest

__all__ = ["KYVERNO_COVERAGE", "kyverno"]

_STOCKADE_NS = {"matchLabels": {LABEL_MANAGED: "stockade"}}

#: admission check id -> the Kyverno rule that enforces it ("pod-security" covers every PSS id).
KYVERNO_COVERAGE = {
    "stockade_runtimeClass": "runtime-class-gvisor",
    "stockade_linuxOnly": "linux-only",
    "stockade_imageDigest": "images-pinned-from-allowed-registries",
    "stockade_registryAllowlist": "images-pinned-from-allowed-registries",
    "stockade_resources": "resources-and-ephemeral-storage",
    "stockade_ephemeralStorage": "resources-and-ephemeral-storage",
    "stockade_readOnlyRootFilesystem": "read-only-root",
    "stockade_serviceAccountToken": "no-service-account-token",
    "stockade_secrets": "granted-secrets-only",  # pragma: allowlist secret
    "stockade_activeDeadline": "active-deadline",
    "stockade_appArmorRequired": "apparmor-required",
}


def _pods() -> Manifest:
    return {"any": [{"resources": {"kinds": ["Pod"], "namespaceSelector": _STOCKADE_NS}}]}


def _rule(name: str, message: str, validate: Manifest, match: Manifest | None = None) -> Manifest:
    body: Manifest = {"failureAction": "Enforce", "message": message}
    body.update(validate)
    return {"name": name, "match": match or _pods(), "validate": body}


def _image_patterns(registries: tuple[str, ...]) -> str:
    alts: list[str] = []
    for r in registries:
        if r.endswith("/*"):
            alts.append(f"{r}@sha256:?*")
        else:
            alts += [f"{r}@sha256:?*", f"{r}:*@sha256:?*"]
    # An empty allowlist denies every image (no pattern can match an empty string image).
    return " | ".join(alts) if alts else "stockade-no-registry-is-allowed"


def _all_containers(item: Manifest) -> Manifest:
    return {"=(initContainers)": [item], "containers": [item], "=(ephemeralContainers)": [item]}


def _secret_conditions(patterns: tuple[str, ...]) -> Manifest:
    obj = "request.object.spec"
    keys = [
        f"{obj}.volumes[].secret.secretName",
        f"{obj}.volumes[].projected.sources[].secret.name",
        f"{obj}.volumes[].csi.nodePublishSecretRef.name",
        f"{obj}.[initContainers, containers, ephemeralContainers][][].env[].valueFrom"
        ".secretKeyRef.name",
        f"{obj}.[initContainers, containers, ephemeralContainers][][].envFrom[].secretRef.name",
    ]
    conds: list[Manifest] = [
        {"key": "{{ " + k + " || `[]` }}", "operator": "AnyNotIn", "value": list(patterns)}
        for k in keys
    ]
    conds.append(
        {
            "key": "{{ " + f"{obj}.volumes[].csi.driver" + " || `[]` }}",
            "operator": "AnyIn",
            "value": ["secrets-store.csi.k8s.io"],
        }
    )
    return {"deny": {"conditions": {"any": conds}}}


def _pod_policy(p: ExportParams) -> Manifest:
    resources = {
        "resources": {
            "limits": {"cpu": "?*", "memory": "?*", "ephemeral-storage": "?*"},
            "requests": {"cpu": "?*", "memory": "?*"},
        }
    }
    rules = [
        _rule(
            "pod-security",
            "Pod Security Standards restricted (latest)",
            {"podSecurity": {"level": "restricted", "version": "latest"}},
        ),
        _rule(
            "runtime-class-gvisor",
            "stockade_runtimeClass: runtimeClassName must be gvisor",
            {"pattern": {"spec": {"runtimeClassName": "gvisor"}}},
        ),
        _rule(
            "linux-only",
            "stockade_linuxOnly: os.name must be linux",
            {"pattern": {"spec": {"=(os)": {"name": "linux"}}}},
        ),
        _rule(
            "images-pinned-from-allowed-registries",
            "stockade_imageDigest/stockade_registryAllowlist: images must be pinned by sha256 "
            "digest and come from an allowed registry",
            {"pattern": {"spec": _all_containers({"image": _image_patterns(p.registries)})}},
        ),
        _rule(
            "resources-and-ephemeral-storage",
            "stockade_resources: containers need cpu/memory requests and limits and an "
            "ephemeral-storage limit; ephemeral containers are not allowed",
            {
                "pattern": {
                    "spec": {
                        "=(initContainers)": [resources],
                        "containers": [resources],
                        "X(ephemeralContainers)": "null",
                    }
                }
            },
        ),
        _rule(
            "read-only-root",
            "stockade_readOnlyRootFilesystem: every container needs a read-only root",
            {
                "pattern": {
                    "spec": _all_containers({"securityContext": {"readOnlyRootFilesystem": True}})
                }
            },
        ),
        _rule(
            "no-service-account-token",
            "stockade_serviceAccountToken: no service account token (automount or projected)",
            {
                "pattern": {
                    "spec": {
                        "automountServiceAccountToken": False,
                        "=(volumes)": [
                            {
                                "=(projected)": {
                                    "=(sources)": [
                                        {
                                            "X(serviceAccountToken)": "null",
                                            "X(podCertificate)": "null",
                                            "X(clusterTrustBundle)": "null",
                                        }
                                    ]
                                }
                            }
                        ],
                    }
                }
            },
        ),
        _rule(
            "granted-secrets-only",
            "stockade_secrets: a Pod reads only its run's Secrets",
            _secret_conditions(p.secret_patterns),
        ),
        _rule(
            "active-deadline",
            "stockade_activeDeadline: activeDeadlineSeconds must be positive",
            {"pattern": {"spec": {"activeDeadlineSeconds": ">0"}}},
        ),
        _rule(
            "apparmor-required",
            "stockade_appArmorRequired: the pod needs a RuntimeDefault or Localhost AppArmor "
            "profile",
            {
                "pattern": {
                    "spec": {
                        "securityContext": {
                            "appArmorProfile": {"type": "RuntimeDefault | Localhost"}
                        }
                    }
                }
            },
        ),
    ]
    return _policy("stockade-pods", rules)


def _policy(name: str, rules: list[Manifest]) -> Manifest:
    return {
        "apiVersion": "kyverno.io/v1",
        "kind": "ClusterPolicy",
        "metadata": {
            "name": name,
            "labels": {LABEL_MANAGED: "stockade"},
            "annotations": {"policies.kyverno.io/category": "stockade"},
        },
        "spec": {"background": True, "rules": rules},
    }


def _namespace_policy(p: ExportParams) -> Manifest:
    labels = {f"pod-security.kubernetes.io/{m}": "restricted" for m in ("enforce", "audit", "warn")}
    ns_match = {"any": [{"resources": {"kinds": ["Namespace"], "selector": _STOCKADE_NS}}]}
    np_match = {
        "any": [{"resources": {"kinds": ["NetworkPolicy"], "namespaceSelector": _STOCKADE_NS}}]
    }
    peer = {
        "namespaceSelector": {
            "matchLabels": {"kubernetes.io/metadata.name": " | ".join(p.proxy_namespaces)}
        },
        "podSelector": {"matchLabels": dict(EGRESS_PROXY_LABELS)},
        "X(ipBlock)": "null",
    }
    rules = [
        _rule(
            "namespace-restricted",
            "a stockade namespace enforces, audits and warns Pod Security restricted",
            {"pattern": {"metadata": {"labels": labels}}},
            ns_match,
        ),
        _rule(
            "network-policy-no-widening",
            "a NetworkPolicy in a stockade namespace has no ingress rules and egress only to "
            "the egress proxy port (never DNS)",
            {
                "pattern": {
                    "spec": {
                        "X(ingress)": "null",
                        "=(egress)": [
                            {"to": [peer], "ports": [{"port": "!53", "X(endPort)": "null"}]}
                        ],
                    }
                }
            },
            np_match,
        ),
    ]
    return _policy("stockade-cluster-objects", rules)


def kyverno(p: ExportParams) -> tuple[Manifest, ...]:
    return (_pod_policy(p), _namespace_policy(p))
