"""Every pod-template kind is unwrapped to the right paths; unknown kinds fail closed."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from stockade.admission import ManifestError, StockadeRules, Verdict, evaluate

from ._helpers import RULES, checks, found, setp, stockade_pod

# kind -> (apiVersion, path from the root to the pod template)
KINDS: dict[str, tuple[str, str]] = {
    "ReplicationController": ("v1", "spec.template"),
    "PodTemplate": ("v1", "template"),
    "Deployment": ("apps/v1", "spec.template"),
    "StatefulSet": ("apps/v1", "spec.template"),
    "DaemonSet": ("apps/v1", "spec.template"),
    "ReplicaSet": ("apps/v1", "spec.template"),
    "Job": ("batch/v1", "spec.template"),
    "CronJob": ("batch/v1", "spec.jobTemplate.spec.template"),
}


def wrap(kind: str, pod: dict[str, Any]) -> dict[str, Any]:
    api, path = KINDS[kind]
    obj: dict[str, Any] = {
        "apiVersion": api,
        "kind": kind,
        "metadata": {"name": f"my-{kind.lower()}"},
    }
    template = {"metadata": pod["metadata"], "spec": copy.deepcopy(pod["spec"])}
    return setp(obj, path, template)


@pytest.mark.guarantee("admit-pss-baseline")
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_pod_template_kind_is_checked_at_its_template_path(kind: str) -> None:
    pod = setp(stockade_pod(), "spec.initContainers[0].securityContext.privileged", True)
    obj = wrap(kind, pod)
    prefix = KINDS[kind][1]
    result = evaluate(obj, "baseline", RULES)
    assert result.kind == kind
    assert result.name == f"my-{kind.lower()}"
    assert {(v.check, v.path) for v in result.violations} == {
        ("privileged", f"{prefix}.spec.initContainers[0].securityContext.privileged")
    }


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_template_annotations_are_read_from_the_template_metadata(kind: str) -> None:
    key = "container.apparmor.security.beta.kubernetes.io/app"
    pod = setp(stockade_pod(), "metadata.annotations", {key: "unconfined"})
    prefix = KINDS[kind][1]
    assert found(wrap(kind, pod), "baseline") == {
        ("appArmorProfile", f"{prefix}.metadata.annotations[{key}]")
    }


@pytest.mark.parametrize(
    "kind", ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController"]
)
def test_long_running_controllers_pass_stockade_without_a_deadline(kind: str) -> None:
    pod = setp(stockade_pod(), "spec.activeDeadlineSeconds", None)
    assert evaluate(wrap(kind, pod), "stockade", RULES).verdict is Verdict.ALLOW


@pytest.mark.parametrize("kind", ["Job", "CronJob", "PodTemplate"])
def test_run_to_completion_kinds_need_a_deadline(kind: str) -> None:
    pod = setp(stockade_pod(), "spec.activeDeadlineSeconds", None)
    assert checks(wrap(kind, pod), "stockade") == {"stockade_activeDeadline"}


@pytest.mark.parametrize(
    ("kind", "job_spec"), [("Job", "spec"), ("CronJob", "spec.jobTemplate.spec")]
)
def test_a_job_level_deadline_bounds_the_run(kind: str, job_spec: str) -> None:
    pod = setp(stockade_pod(), "spec.activeDeadlineSeconds", None)
    obj = setp(wrap(kind, pod), f"{job_spec}.activeDeadlineSeconds", 600)
    assert evaluate(obj, "stockade", RULES).verdict is Verdict.ALLOW


@pytest.mark.guarantee("admit-fail-closed-input")
@pytest.mark.parametrize(
    ("api", "kind"),
    [
        ("v1", "Deployment"),  # right kind, wrong group
        ("apps/v1beta1", "Deployment"),
        ("batch/v1beta1", "CronJob"),
        ("example.com/v1", "Pod"),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
        ("v1", "Mystery"),
        ("v1", "Namespace"),  # pod-security labels could weaken the cluster's own admission
        ("networking.k8s.io/v1", "NetworkPolicy"),  # allow rules widen egress
        ("v1", "ResourceQuota"),
        ("v1", "LimitRange"),
    ],
)
def test_unknown_kinds_are_an_input_error(api: str, kind: str) -> None:
    with pytest.raises(ManifestError, match="expected a workload"):
        evaluate({"apiVersion": api, "kind": kind, "metadata": {"name": "x"}}, "baseline", RULES)


@pytest.mark.guarantee("admit-fail-closed-input")
@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"kind": "Pod"}, "no apiVersion/kind"),
        ({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}, "spec: missing"),
        ({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": []}}, "at least one container"),
        (
            {"apiVersion": "v1", "kind": "Pod", "spec": {"containers": "c"}},
            "got string, expected a list",
        ),
        (
            {"apiVersion": "v1", "kind": "Pod", "spec": {"containers": ["c"]}},
            r"containers\[0\]: got string",
        ),
        ({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {}}, "spec.template: missing"),
        (  # found by the Hypothesis fuzz property: a list where a capability name belongs
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "spec": {
                    "containers": [
                        {"name": "c", "securityContext": {"capabilities": {"add": [[]]}}}
                    ]
                },
            },
            r"capabilities.add\[0\]: got list, expected a string",
        ),
        (
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "spec": {"hostPID": "yes", "containers": [{"name": "c"}]},
            },
            "spec.hostPID: got string, expected a boolean",
        ),
        (
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "spec": {"containers": [{"name": "c", "securityContext": {"privileged": 1}}]},
            },
            "privileged: got number, expected a boolean",
        ),
        (
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "spec": {"containers": [{"name": "c", "securityContext": {"runAsUser": "0"}}]},
            },
            "runAsUser: got string, expected an integer",
        ),
    ],
)
def test_malformed_workloads_are_an_input_error_not_a_guess(
    obj: dict[str, Any], message: str
) -> None:
    with pytest.raises(ManifestError, match=message):
        evaluate(obj, "restricted", RULES)


@pytest.mark.parametrize(
    ("api", "kind"),
    [
        ("v1", "ConfigMap"),
        ("v1", "Service"),
        ("v1", "Secret"),
        ("v1", "ServiceAccount"),
        ("policy/v1", "PodDisruptionBudget"),
        ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ],
)
def test_inert_kinds_are_allowed_with_no_check(api: str, kind: str) -> None:
    result = evaluate(
        {"apiVersion": api, "kind": kind, "metadata": {"name": "x"}}, "stockade", StockadeRules()
    )
    assert result.verdict is Verdict.ALLOW
    assert not result.workload
    assert result.violations == ()
