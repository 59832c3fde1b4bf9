"""Stockade's own rules, on top of PSS restricted: gVisor, pinned images from allowed registries,
bounded resources and run time, a read-only root, no service-account token and no Secret the
operator did not grant."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ._access import get_bool, get_int, get_list, get_map, get_str, require_map
from ._baseline import container_sc, pod_sc
from ._images import image_allowed, parse_image_ref, parse_registry_pattern
from ._model import StockadeRules, Violation
from ._pod import PodView

__all__ = [
    "GVISOR_RUNTIME_CLASS",
    "active_deadline",
    "app_armor_required",
    "ephemeral_storage",
    "image_digest",
    "linux_only",
    "read_only_root",
    "registry_allowlist",
    "resources",
    "runtime_class",
    "secrets",
    "service_account_token",
]

GVISOR_RUNTIME_CLASS = "gvisor"
_SECRET_CSI_DRIVERS = frozenset({"secrets-store.csi.k8s.io"})
_QUANTITY = re.compile(
    r"\+?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?"
)
_ZERO = re.compile(r"\+?0*\.?0*(?:[KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?")


def _shown(value: object) -> str:
    return "unset" if value is None else repr(value)


def runtime_class(pod: PodView, _rules: StockadeRules) -> list[Violation]:
    value = get_str(pod.spec, "runtimeClassName", pod.spec_path)
    if value == GVISOR_RUNTIME_CLASS:
        return []
    return [
        Violation(
            check="stockade_runtimeClass",
            path=f"{pod.spec_path}.runtimeClassName",
            message=f"runtimeClassName is {_shown(value)}, expected {GVISOR_RUNTIME_CLASS!r}",
            fix=f"set spec.runtimeClassName: {GVISOR_RUNTIME_CLASS} (gVisor sandbox)",
        )
    ]


def _images(pod: PodView) -> list[tuple[str, str, str | None]]:
    return [(c.name, f"{c.path}.image", get_str(c.obj, "image", c.path)) for c in pod.containers]


def image_digest(pod: PodView, _rules: StockadeRules) -> list[Violation]:
    out = []
    for name, path, image in _images(pod):
        try:
            pinned = image is not None and parse_image_ref(image).pinned
            why = "is not pinned by digest"
        except ValueError as e:
            pinned, why = False, f"is not a valid reference ({e})"
        if not pinned:
            out.append(
                Violation(
                    check="stockade_imageDigest",
                    path=path,
                    message=f"container {name!r} image {image!r} {why}",
                    fix="pin the image as NAME@sha256:<64 hex> (resolve the tag to its digest)",
                )
            )
    return out


def registry_allowlist(pod: PodView, rules: StockadeRules) -> list[Violation]:
    patterns = tuple(parse_registry_pattern(p) for p in rules.allowed_registries)
    out = []
    for name, path, image in _images(pod):
        try:
            ref = parse_image_ref(image or "")
            allowed = image_allowed(ref, patterns)
            where = f"{ref.registry}/{ref.repository}"
        except ValueError as e:
            allowed, where = False, f"an invalid reference ({e})"
        if not allowed:
            listed = ", ".join(rules.allowed_registries) or "nothing (empty allowlist)"
            out.append(
                Violation(
                    check="stockade_registryAllowlist",
                    path=path,
                    message=f"container {name!r} image {image!r} comes from {where}, "
                    f"which the allowlist does not match (allowed: {listed})",
                    fix="use an image from an allowed registry, or add REGISTRY/NAMESPACE/* "
                    "to the policy's registries",
                )
            )
    return out


def _quantity_ok(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return False
    text = str(value)
    return _QUANTITY.fullmatch(text) is not None and _ZERO.fullmatch(text) is None


def _resource_violations(
    pod: PodView, check: str, wanted: tuple[tuple[str, str], ...]
) -> list[Violation]:
    out = []
    for c in pod.containers:
        if c.group == "ephemeralContainers":
            out.append(
                Violation(
                    check=check,
                    path=f"{c.path}.resources",
                    message=f"ephemeral container {c.name!r} cannot declare resources",
                    fix="remove the ephemeral container: stockade workloads are not debugged "
                    "in place",
                )
            )
            continue
        res = get_map(c.obj, "resources", c.path) or {}
        for section, resource in wanted:
            values = get_map(res, section, f"{c.path}.resources") or {}
            if not _quantity_ok(values.get(resource)):
                out.append(
                    Violation(
                        check=check,
                        path=f"{c.path}.resources.{section}.{resource}",
                        message=f"container {c.name!r} has no positive {section}.{resource} "
                        f"(got {_shown(values.get(resource))})",
                        fix=f"set resources.{section}.{resource} to a positive quantity",
                    )
                )
    return out


def resources(pod: PodView, _rules: StockadeRules) -> list[Violation]:
    wanted = (("limits", "cpu"), ("limits", "memory"), ("requests", "cpu"), ("requests", "memory"))
    return _resource_violations(pod, "stockade_resources", wanted)


def ephemeral_storage(pod: PodView, _rules: StockadeRules) -> list[Violation]:
    return _resource_violations(
        pod, "stockade_ephemeralStorage", (("limits", "ephemeral-storage"),)
    )


def read_only_root(pod: PodView, _rules: StockadeRules) -> list[Violation]:
    out = []
    for c in pod.containers:
        sc, p = container_sc(c)
        if get_bool(sc, "readOnlyRootFilesystem", p) is not True:
            out.append(
                Violation(
                    check="stockade_readOnlyRootFilesystem",
                    path=f"{p}.readOnlyRootFilesystem",
                    message=f"container {c.name!r} has a writable root filesystem",
                    fix="set securityContext.readOnlyRootFilesystem: true (mount an emptyDir "
                    "for scratch space)",
                )
            )
    return out


# Projected volume sources that hand the pod a credential of its own (API token, client cert).
_CREDENTIAL_PROJECTIONS = ("serviceAccountToken", "podCertificate")


def service_account_token(pod: PodView, _rules: StockadeRules) -> list[Violation]:
    out = []
    if get_bool(pod.spec, "automountServiceAccountToken", pod.spec_path) is not False:
        out.append(
            Violation(
                check="stockade_serviceAccountToken",
                path=f"{pod.spec_path}.automountServiceAccountToken",
                message="the pod may mount a service-account token (API credentials)",
                fix="set spec.automountServiceAccountToken: false",
            )
        )
    for i, item in enumerate(get_list(pod.spec, "volumes", pod.spec_path) or ()):
        vp = f"{pod.spec_path}.volumes[{i}]"
        projected = get_map(require_map(item, vp), "projected", vp) or {}
        for j, src in enumerate(get_list(projected, "sources", f"{vp}.projected") or ()):
            sp = f"{vp}.projected.sources[{j}]"
            source = require_map(src, sp)
            out += [
                Violation(
                    check="stockade_serviceAccountToken",
                    path=f"{sp}.{kind}",
                    message=f"a projected volume mounts a {kind} credential",
                    fix="remove the projected credential: stockade workloads get no cluster "
                    "identity",
                )
                for kind in _CREDENTIAL_PROJECTIONS
                if source.get(kind) is not None
            ]
    return out


def _secret_refs(pod: PodView) -> list[tuple[str, str]]:
    """Every (path, secret name) the pod reads; a missing name is reported as ''."""
    refs: list[tuple[str, str]] = []

    def name_at(holder: Mapping[str, Any], key: str, path: str, field: str = "name") -> None:
        ref = get_map(holder, key, path)
        if ref is not None:
            refs.append((f"{path}.{key}.{field}", get_str(ref, field, f"{path}.{key}") or ""))

    for c in pod.containers:
        for i, item in enumerate(get_list(c.obj, "env", c.path) or ()):
            ep = f"{c.path}.env[{i}]"
            value_from = get_map(require_map(item, ep), "valueFrom", ep)
            if value_from is not None:
                name_at(value_from, "secretKeyRef", f"{ep}.valueFrom")
        for i, item in enumerate(get_list(c.obj, "envFrom", c.path) or ()):
            name_at(
                require_map(item, f"{c.path}.envFrom[{i}]"), "secretRef", f"{c.path}.envFrom[{i}]"
            )
    for i, item in enumerate(get_list(pod.spec, "volumes", pod.spec_path) or ()):
        vp = f"{pod.spec_path}.volumes[{i}]"
        vol = require_map(item, vp)
        name_at(vol, "secret", vp, "secretName")
        csi = get_map(vol, "csi", vp)
        if csi is not None:
            name_at(csi, "nodePublishSecretRef", f"{vp}.csi")
            if get_str(csi, "driver", f"{vp}.csi") in _SECRET_CSI_DRIVERS:
                # Secrets from an external store: no Secret name stockade could grant.
                refs.append((f"{vp}.csi.driver", ""))
        projected = get_map(vol, "projected", vp) or {}
        for j, src in enumerate(get_list(projected, "sources", f"{vp}.projected") or ()):
            sp = f"{vp}.projected.sources[{j}]"
            name_at(require_map(src, sp), "secret", sp)
    return refs


def secrets(pod: PodView, rules: StockadeRules) -> list[Violation]:
    return [
        Violation(
            check="stockade_secrets",
            path=path,
            message=f"the pod reads Secret {name!r}, which the policy does not grant"
            if name
            else "the pod reads a secret stockade cannot name (no name, or an external store)",
            fix="remove the reference, or grant the secret in the policy (--allow-secret NAME)",
        )
        for path, name in _secret_refs(pod)
        if not name or name not in rules.granted_secrets
    ]


def active_deadline(pod: PodView, _rules: StockadeRules) -> list[Violation]:
    if pod.deadline_specs is None:  # long-running controller: the field does not exist there
        return []
    for spec, path in pod.deadline_specs:
        value = get_int(spec, "activeDeadlineSeconds", path)
        if value is not None and value > 0:
            return []
    where = " or ".join(f"{p}.activeDeadlineSeconds" for _, p in pod.deadline_specs)
    return [
        Violation(
            check="stockade_activeDeadline",
            path=f"{pod.deadline_specs[0][1]}.activeDeadlineSeconds",
            message=f"the {pod.kind} has no positive deadline ({where})",
            fix="set activeDeadlineSeconds to the longest the run may take",
        )
    ]


def app_armor_required(pod: PodView, _rules: StockadeRules) -> list[Violation]:
    if pod.windows:
        return []  # stockade_linuxOnly denies Windows pods
    psc, pp = pod_sc(pod)
    pod_prof = get_map(psc, "appArmorProfile", pp) or {}
    pod_type = get_str(pod_prof, "type", f"{pp}.appArmorProfile")
    out = []
    for c in pod.containers:
        sc, p = container_sc(c)
        prof = get_map(sc, "appArmorProfile", p)
        type_ = get_str(prof, "type", f"{p}.appArmorProfile") if prof is not None else pod_type
        if type_ not in {"RuntimeDefault", "Localhost"}:
            out.append(
                Violation(
                    check="stockade_appArmorRequired",
                    path=f"{p}.appArmorProfile.type",
                    message=f"container {c.name!r} runs with AppArmor profile {_shown(type_)}",
                    fix="set spec.securityContext.appArmorProfile.type: RuntimeDefault",
                )
            )
    return out


def linux_only(pod: PodView, _rules: StockadeRules) -> list[Violation]:
    os_ = get_map(pod.spec, "os", pod.spec_path) or {}
    name = get_str(os_, "name", f"{pod.spec_path}.os")
    if name in {None, "linux"}:
        return []
    return [
        Violation(
            check="stockade_linuxOnly",
            path=f"{pod.spec_path}.os.name",
            message=f"the pod targets {name!r}; gVisor sandboxes run Linux only",
            fix="remove spec.os or set spec.os.name: linux",
        )
    ]
