"""Cluster-side defence in depth: the Gatekeeper Rego (executed with regopy) and the Kyverno
export (structure and coverage; no Kyverno engine runs here)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from stockade.admission import CHECKS, Level, StockadeRules, evaluate
from stockade.kube import (
    KYVERNO_COVERAGE,
    NAMESPACE_PACKAGE,
    NETPOL_PACKAGE,
    REGO_PACKAGE,
    ExportParams,
    KubeError,
    Manifest,
    gatekeeper,
    kyverno,
    render,
    rules_for,
)
from stockade.models import SandboxSpec

from ._helpers import REGISTRIES, REPO, allowlist, objs_of, one, render_input, spec
from ._rego import check_ids, violations
from .test_properties import specs

PARAMS = ExportParams(registries=REGISTRIES)
POD_PARAMS = {"registries": list(REGISTRIES), "secretPatterns": list(PARAMS.secret_patterns)}
NP_PARAMS = {"proxyNamespaces": ["stockade-egress"]}
DIGEST = "@sha256:" + "cd" * 32

#: Admission ids whose restricted replacement (or stockade requirement) the Rego reports.
EQUIVALENT = {
    "capabilities_baseline": {"capabilities_restricted"},
    "hostPathVolumes": {"restrictedVolumes"},
    "procMount": {"procMount_restricted"},
    "seccompProfile_baseline": {"seccompProfile_restricted"},
    "appArmorProfile": {"appArmorProfile", "stockade_appArmorRequired"},
}


def template_rego(kind: str) -> str:
    (t,) = [o for o in gatekeeper(PARAMS) if o["metadata"]["name"] == kind.lower()]
    rego: str = t["spec"]["targets"][0]["rego"]
    return rego


def pod_violations(pod: Manifest) -> list[str]:
    return violations(template_rego("K8sStockadePod"), REGO_PACKAGE, pod, POD_PARAMS)


@cache
def _rendered() -> tuple[Manifest, ...]:
    return objs_of(spec(network=allowlist(), secrets=("API_TOKEN",)))


def good_pod() -> Manifest:
    return copy.deepcopy(one(_rendered(), "Pod"))


def admission_ids(pod: Manifest) -> set[str]:
    res = evaluate(pod, Level.STOCKADE, rules_for(_rendered(), REGISTRIES), only=None)
    return {v.check for v in res.violations}


def _c(pod: Manifest) -> dict[str, Any]:
    c: dict[str, Any] = pod["spec"]["containers"][0]
    return c


def _sc(pod: Manifest) -> dict[str, Any]:
    sc: dict[str, Any] = _c(pod)["securityContext"]
    return sc


Mutation = Callable[[Manifest], object]
HARDENED_EPHEMERAL = {
    "name": "debug",
    "image": "ghcr.io/acme/debug" + DIGEST,
    "securityContext": {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    },
}

#: (id, mutation, the check id the Rego must report). Each is also a bad fixture for admission.
BAD: list[tuple[str, Mutation, str]] = [
    ("runtime-runc", lambda p: p["spec"].update(runtimeClassName="runc"), "stockade_runtimeClass"),
    ("runtime-unset", lambda p: p["spec"].pop("runtimeClassName"), "stockade_runtimeClass"),
    ("image-tag-only", lambda p: _c(p).update(image="ghcr.io/acme/tool:1"), "stockade_imageDigest"),
    (
        "image-short-digest",
        lambda p: _c(p).update(image="ghcr.io/acme/tool@sha256:abc"),
        "stockade_imageDigest",
    ),
    (
        "image-other-registry",
        lambda p: _c(p).update(image="quay.io/evil/tool" + DIGEST),
        "stockade_registryAllowlist",
    ),
    (
        "image-prefix-trick",
        lambda p: _c(p).update(image="ghcr.io/acmex/tool" + DIGEST),
        "stockade_registryAllowlist",
    ),
    (
        "image-host-trick",
        lambda p: _c(p).update(image="ghcr.io.evil.io/acme/tool" + DIGEST),
        "stockade_registryAllowlist",
    ),
    (
        "image-docker-default",
        lambda p: _c(p).update(image="acme/tool" + DIGEST),
        "stockade_registryAllowlist",
    ),
    (
        "rw-root",
        lambda p: _sc(p).update(readOnlyRootFilesystem=False),
        "stockade_readOnlyRootFilesystem",
    ),
    (
        "rw-root-unset",
        lambda p: _sc(p).pop("readOnlyRootFilesystem"),
        "stockade_readOnlyRootFilesystem",
    ),
    (
        "escalation",
        lambda p: _sc(p).update(allowPrivilegeEscalation=True),
        "allowPrivilegeEscalation",
    ),
    (
        "escalation-unset",
        lambda p: _sc(p).pop("allowPrivilegeEscalation"),
        "allowPrivilegeEscalation",
    ),
    ("privileged", lambda p: _sc(p).update(privileged=True), "privileged"),
    (
        "cap-add",
        lambda p: _sc(p).update(capabilities={"drop": ["ALL"], "add": ["SYS_ADMIN"]}),
        "capabilities_restricted",
    ),
    ("cap-no-drop", lambda p: _sc(p).update(capabilities={}), "capabilities_restricted"),
    (
        "root-allowed",
        lambda p: (
            p["spec"]["securityContext"].update(runAsNonRoot=False),
            _sc(p).pop("runAsNonRoot"),
        ),
        "runAsNonRoot",
    ),
    ("container-nonroot-false", lambda p: _sc(p).update(runAsNonRoot=False), "runAsNonRoot"),
    ("uid-0", lambda p: _sc(p).update(runAsUser=0), "runAsUser"),
    ("pod-uid-0", lambda p: p["spec"]["securityContext"].update(runAsUser=0), "runAsUser"),
    (
        "seccomp-unconfined",
        lambda p: _sc(p).update(seccompProfile={"type": "Unconfined"}),
        "seccompProfile_restricted",
    ),
    (
        "apparmor-unconfined",
        lambda p: _sc(p).update(appArmorProfile={"type": "Unconfined"}),
        "stockade_appArmorRequired",
    ),
    (
        "apparmor-annotation",
        lambda p: (
            p["metadata"]
            .setdefault("annotations", {})
            .update({"container.apparmor.security.beta.kubernetes.io/server": "unconfined"})
        ),
        "appArmorProfile",
    ),
    ("host-network", lambda p: p["spec"].update(hostNetwork=True), "hostNamespaces"),
    ("host-pid", lambda p: p["spec"].update(hostPID=True), "hostNamespaces"),
    ("host-ipc", lambda p: p["spec"].update(hostIPC=True), "hostNamespaces"),
    (
        "host-path",
        lambda p: p["spec"]["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
        "restrictedVolumes",
    ),
    (
        "nfs",
        lambda p: p["spec"]["volumes"].append({"name": "n", "nfs": {"server": "x", "path": "/"}}),
        "restrictedVolumes",
    ),
    (
        "host-port",
        lambda p: _c(p).update(ports=[{"containerPort": 80, "hostPort": 80}]),
        "hostPorts",
    ),
    (
        "sa-token",
        lambda p: p["spec"].update(automountServiceAccountToken=True),
        "stockade_serviceAccountToken",
    ),
    (
        "sa-token-unset",
        lambda p: p["spec"].pop("automountServiceAccountToken"),
        "stockade_serviceAccountToken",
    ),
    (
        "sa-token-projected",
        lambda p: p["spec"]["volumes"].append(
            {"name": "t", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}
        ),
        "stockade_serviceAccountToken",
    ),
    ("no-cpu-limit", lambda p: _c(p)["resources"]["limits"].pop("cpu"), "stockade_resources"),
    (
        "no-memory-request",
        lambda p: _c(p)["resources"]["requests"].pop("memory"),
        "stockade_resources",
    ),
    (
        "zero-memory",
        lambda p: _c(p)["resources"]["limits"].update(memory="0"),
        "stockade_resources",
    ),
    (
        "no-ephemeral-limit",
        lambda p: _c(p)["resources"]["limits"].pop("ephemeral-storage"),
        "stockade_ephemeralStorage",
    ),
    (
        "ephemeral-container",
        lambda p: p["spec"].update(ephemeralContainers=[copy.deepcopy(HARDENED_EPHEMERAL)]),
        "stockade_resources",
    ),
    ("no-deadline", lambda p: p["spec"].pop("activeDeadlineSeconds"), "stockade_activeDeadline"),
    (
        "zero-deadline",
        lambda p: p["spec"].update(activeDeadlineSeconds=0),
        "stockade_activeDeadline",
    ),
    (
        "ungranted-env-secret",
        lambda p: _c(p)["env"].append(
            {"name": "X", "valueFrom": {"secretKeyRef": {"name": "cloud-credentials", "key": "k"}}}
        ),
        "stockade_secrets",
    ),
    (
        "ungranted-envfrom-secret",
        lambda p: _c(p).update(envFrom=[{"secretRef": {"name": "cloud-credentials"}}]),
        "stockade_secrets",
    ),
    (
        "ungranted-volume-secret",
        lambda p: p["spec"]["volumes"].append(
            {"name": "s", "secret": {"secretName": "cloud-credentials"}}  # pragma: allowlist secret
        ),
        "stockade_secrets",
    ),
    (
        "secret-store-csi",
        lambda p: p["spec"]["volumes"].append(
            {"name": "c", "csi": {"driver": "secrets-store.csi.k8s.io"}}
        ),
        "stockade_secrets",
    ),
    (
        "sysctl",
        lambda p: p["spec"]["securityContext"].update(
            sysctls=[{"name": "kernel.msgmax", "value": "1"}]
        ),
        "sysctls",
    ),
    ("selinux", lambda p: _sc(p).update(seLinuxOptions={"type": "spc_t"}), "seLinuxOptions"),
    ("proc-mount", lambda p: _sc(p).update(procMount="Unmasked"), "procMount_restricted"),
    ("windows", lambda p: p["spec"].update(os={"name": "windows"}), "stockade_linuxOnly"),
    (
        "probe-host",
        lambda p: _c(p).update(livenessProbe={"httpGet": {"host": "10.0.0.1", "port": 80}}),
        "hostProbesAndHostLifecycle",
    ),
    (
        "host-process",
        lambda p: _sc(p).update(windowsOptions={"hostProcess": True}),
        "windowsHostProcess",
    ),
]


@pytest.mark.guarantee("k8s-cluster-policies")
@pytest.mark.parametrize(
    "kw", [{}, {"network": allowlist(), "secrets": ("API_TOKEN",)}], ids=["none", "allowlist"]
)
def test_the_rego_admits_every_rendered_pod(kw: dict[str, Any]) -> None:
    assert pod_violations(one(objs_of(spec(**kw)), "Pod")) == []


@pytest.mark.guarantee("k8s-cluster-policies")
def test_the_rego_admits_the_hardened_example_workload() -> None:
    pod = yaml.safe_load((REPO / "examples/workloads/hardened-gvisor-pod.yaml").read_text())
    assert evaluate(pod, Level.STOCKADE, StockadeRules.of(REGISTRIES), only=None).verdict == "allow"
    assert pod_violations(pod) == []


@pytest.mark.guarantee("k8s-cluster-policies")
@pytest.mark.parametrize(
    ("mutate", "expected"), [(m, e) for _, m, e in BAD], ids=[i for i, _, _ in BAD]
)
def test_the_rego_denies_each_bad_fixture_with_the_admission_check_id(
    mutate: Mutation, expected: str
) -> None:
    pod = good_pod()
    mutate(pod)
    got = check_ids(pod_violations(pod))
    assert expected in got
    # Admission denies the same fixture, and every check it names the Rego names too.
    want = admission_ids(pod)
    assert want, "the fixture must be bad for admission as well"
    for check in want:
        assert got & EQUIVALENT.get(check, {check}), (check, got)


@pytest.mark.guarantee("k8s-cluster-policies")
@settings(max_examples=40)
@given(st.lists(st.sampled_from(range(len(BAD))), min_size=1, max_size=4, unique=True))
def test_whatever_admission_denies_the_rego_denies_for_the_same_reasons(picks: list[int]) -> None:
    pod = good_pod()
    for i in picks:
        try:
            BAD[i][1](pod)
        except KeyError:  # an earlier mutation removed what this one edits
            continue
    want = admission_ids(pod)
    got = check_ids(pod_violations(pod))
    for check in want:
        assert got & EQUIVALENT.get(check, {check}), (check, got)


def test_an_empty_registry_allowlist_denies_every_image() -> None:
    msgs = violations(template_rego("K8sStockadePod"), REGO_PACKAGE, good_pod(), {})
    assert "stockade_registryAllowlist" in check_ids(msgs)
    assert "stockade_secrets" in check_ids(msgs)


def test_secret_patterns_grant_run_secrets_by_name_shape_only() -> None:
    # Documented difference: the cluster grants stockade-*-secrets by pattern, while admission
    # grants the exact names of one render; another run's Secret in the same namespace (same
    # server, same grants) passes the Rego.
    pod = good_pod()
    pod["spec"]["volumes"][-1]["projected"]["sources"][0]["secret"]["name"] = "stockade-r2-secrets"
    assert "stockade_secrets" not in check_ids(pod_violations(pod))
    assert "stockade_secrets" in admission_ids(pod)


# -- namespace and network policy templates ------------------------------------------------------


def ns_violations(obj: Manifest) -> list[str]:
    return violations(template_rego("K8sStockadeNamespace"), NAMESPACE_PACKAGE, obj, {})


def np_violations(obj: Manifest) -> list[str]:
    return violations(template_rego("K8sStockadeNetworkPolicy"), NETPOL_PACKAGE, obj, NP_PARAMS)


@pytest.mark.guarantee("k8s-cluster-policies")
def test_the_rendered_namespace_and_network_policies_pass_their_templates() -> None:
    objs = objs_of(spec(network=allowlist()))
    assert ns_violations(one(objs, "Namespace", "namespace")) == []
    run_ns = one(objs, "Pod")["metadata"]["namespace"]
    for np in [o for o in objs if o["kind"] == "NetworkPolicy"]:
        if np["metadata"]["namespace"] == run_ns:
            assert np_violations(np) == []
    # The proxy's own policies (ingress from workloads, DNS and 80/443 out) live in the egress
    # namespace, which is not a stockade run namespace: the constraints do not select it.
    egress_ns = one(objs, "Namespace", "egress-namespace")
    assert "app.kubernetes.io/managed-by" not in egress_ns["metadata"]["labels"]


@pytest.mark.guarantee("k8s-cluster-policies")
@pytest.mark.parametrize(
    ("label", "value"),
    [
        ("pod-security.kubernetes.io/enforce", "baseline"),
        ("pod-security.kubernetes.io/enforce", None),
        ("pod-security.kubernetes.io/warn", "privileged"),
        ("pod-security.kubernetes.io/enforce-version", "v1.20"),
    ],
)
def test_a_namespace_relabelled_below_restricted_is_denied(label: str, value: str | None) -> None:
    ns = copy.deepcopy(one(objs_of(), "Namespace"))
    if value is None:
        ns["metadata"]["labels"].pop(label)
    else:
        ns["metadata"]["labels"][label] = value
    assert ns_violations(ns)


def _egress_np() -> Manifest:
    return copy.deepcopy(one(objs_of(spec(network=allowlist())), "NetworkPolicy", "egress"))


@pytest.mark.guarantee("k8s-cluster-policies")
@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: s.update(ingress=[{}]),
        lambda s: s.update(policyTypes=["Ingress"]),
        lambda s: s["egress"].append({"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}),
        lambda s: s["egress"].append({}),
        lambda s: s["egress"][0]["ports"].append({"protocol": "UDP", "port": 53}),
        lambda s: s["egress"][0]["ports"][0].update(endPort=65535),
        lambda s: s["egress"][0].pop("ports"),
        lambda s: s["egress"][0]["to"][0]["namespaceSelector"].update(matchLabels={}),
        lambda s: s["egress"][0]["to"][0].pop("namespaceSelector"),
        lambda s: s["egress"][0]["to"][0]["podSelector"].update(matchLabels={}),
        lambda s: s["egress"][0]["to"][0]["namespaceSelector"].update(
            matchLabels={"kubernetes.io/metadata.name": "kube-system"}
        ),
    ],
    ids=[
        "ingress",
        "no-egress-type",
        "ipblock",
        "egress-to-all",
        "dns",
        "port-range",
        "all-ports",
        "any-namespace",
        "no-namespace",
        "any-pod",
        "kube-system",
    ],
)
def test_a_widened_network_policy_is_denied(mutate: Callable[[dict[str, Any]], object]) -> None:
    np = _egress_np()
    mutate(np["spec"])
    assert np_violations(np)


# -- export structure ----------------------------------------------------------------------------


def test_gatekeeper_templates_are_named_after_their_kinds_and_constraints_follow() -> None:
    objs = gatekeeper(PARAMS)
    kinds = [o["spec"]["crd"]["spec"]["names"]["kind"] for o in objs[:3]]
    assert [o["metadata"]["name"] for o in objs[:3]] == [k.lower() for k in kinds]
    assert [o["kind"] for o in objs[3:]] == kinds
    for c in objs[3:]:
        assert c["spec"]["enforcementAction"] == "deny"
    assert objs[3]["spec"]["parameters"]["registries"] == list(REGISTRIES)


KYVERNO_SCHEMA = yaml.safe_load(
    (Path(__file__).parent / "kyverno-fields.schema.yaml").read_text(encoding="utf-8")
)


@pytest.mark.guarantee("k8s-cluster-policies")
def test_the_kyverno_export_uses_only_known_clusterpolicy_fields() -> None:
    import jsonschema

    for policy in kyverno(PARAMS):
        jsonschema.validate(policy, KYVERNO_SCHEMA)


def test_the_kyverno_field_schema_rejects_unknown_fields() -> None:
    import jsonschema

    bad = copy.deepcopy(kyverno(PARAMS)[0])
    bad["spec"]["rules"][0]["validate"]["failureActoin"] = "Enforce"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, KYVERNO_SCHEMA)


@pytest.mark.guarantee("k8s-cluster-policies")
def test_every_admission_check_is_covered_by_a_kyverno_rule() -> None:
    rules = {r["name"]: r for p in kyverno(PARAMS) for r in p["spec"]["rules"]}
    assert rules["pod-security"]["validate"]["podSecurity"] == {
        "level": "restricted",
        "version": "latest",
    }
    for check in CHECKS:
        if check.level == Level.STOCKADE:
            assert KYVERNO_COVERAGE[check.id] in rules, check.id
    for rule in rules.values():
        assert rule["validate"]["failureAction"] == "Enforce"


def test_kyverno_image_patterns_pin_digests_for_every_allowed_registry() -> None:
    p = ExportParams(registries=("ghcr.io/acme/*", "quay.io/team/tool"))
    (pods, _) = kyverno(p)
    rule = next(r for r in pods["spec"]["rules"] if r["name"].startswith("images-"))
    image = rule["validate"]["pattern"]["spec"]["containers"][0]["image"]
    assert image.split(" | ") == [
        "ghcr.io/acme/*@sha256:?*",
        "quay.io/team/tool@sha256:?*",
        "quay.io/team/tool:*@sha256:?*",
    ]
    (empty, _) = kyverno(ExportParams(registries=()))
    rule = next(r for r in empty["spec"]["rules"] if r["name"].startswith("images-"))
    assert "*" not in rule["validate"]["pattern"]["spec"]["containers"][0]["image"]


def test_exports_are_admitted_as_yaml_without_anchors() -> None:
    from stockade.kube import dump_all

    for objs in (gatekeeper(PARAMS), kyverno(PARAMS)):
        text = dump_all(objs)
        assert "&id" not in text
        assert "*id" not in text
        assert list(yaml.safe_load_all(text)) == list(objs)


@pytest.mark.guarantee("k8s-cluster-policies")
@settings(max_examples=25)
@given(spec_=specs)
def test_the_rego_admits_the_pod_rendered_from_any_valid_spec(spec_: SandboxSpec) -> None:
    try:
        objs = render(render_input(spec_))
    except KubeError:
        return  # the CPU floor refusal (tested in test_properties)
    assert pod_violations(one(objs, "Pod")) == []


def _pod_templates(doc: Manifest) -> Manifest:
    """The Pod a controller would create from ``doc`` (what Gatekeeper then judges)."""
    kind = doc["kind"]
    if kind == "Pod":
        return doc
    tpl = (
        doc["spec"]["jobTemplate"]["spec"]["template"]
        if kind == "CronJob"
        else doc["spec"]["template"]
    )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": tpl.get("metadata", {}),
        "spec": tpl["spec"],
    }


EXPECTED = yaml.safe_load((REPO / "examples/workloads/expected.yaml").read_text())


@pytest.mark.guarantee("k8s-cluster-policies")
@pytest.mark.parametrize(
    "name",
    sorted(
        n for n, e in EXPECTED.items() if "stockade" in e and e["stockade"]["verdict"] == "deny"
    ),
)
def test_the_rego_denies_the_admission_examples_for_at_least_their_reasons(name: str) -> None:
    docs = list(yaml.safe_load_all((REPO / "examples/workloads" / name).read_text()))
    got: set[str] = set()
    for doc in docs:
        if doc and doc.get("kind") not in ("ConfigMap", "Secret", "Service"):
            got |= check_ids(pod_violations(_pod_templates(doc)))
    for check in EXPECTED[name]["stockade"]["checks"]:
        assert got & EQUIVALENT.get(check, {check}), (name, check, got)
