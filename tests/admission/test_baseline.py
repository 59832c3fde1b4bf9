"""PSS baseline, one table per check, both sides of every boundary, every container kind."""

from __future__ import annotations

from typing import Any

import pytest

from stockade.admission._baseline import BASELINE_CAPABILITIES, SAFE_SYSCTLS

from ._helpers import GROUPS, allowed, found, restricted_pod, setp

pytestmark = pytest.mark.guarantee("admit-pss-baseline")

SC = "securityContext"

# (field under spec.<group>[0], value, denying check or None when allowed)
CONTAINER_CASES: list[tuple[str, Any, str | None]] = [
    (f"{SC}.privileged", True, "privileged"),
    (f"{SC}.privileged", False, None),
    (f"{SC}.procMount", "Unmasked", "procMount"),
    (f"{SC}.procMount", "Default", None),
    (f"{SC}.seccompProfile", {"type": "Unconfined"}, "seccompProfile_baseline"),
    (f"{SC}.seccompProfile", {"type": "RuntimeDefault"}, None),
    (f"{SC}.seccompProfile", {"type": "Localhost", "localhostProfile": "p.json"}, None),
    (f"{SC}.appArmorProfile", {"type": "Unconfined"}, "appArmorProfile"),
    (f"{SC}.appArmorProfile", {"type": "RuntimeDefault"}, None),
    (f"{SC}.appArmorProfile", {"type": "Localhost", "localhostProfile": "k8s-x"}, None),
    (f"{SC}.seLinuxOptions", {"type": "spc_t"}, "seLinuxOptions"),
    (f"{SC}.seLinuxOptions", {"user": "system_u"}, "seLinuxOptions"),
    (f"{SC}.seLinuxOptions", {"role": "sysadm_r"}, "seLinuxOptions"),
    (f"{SC}.seLinuxOptions", {"level": "s0:c123,c456"}, None),
    (f"{SC}.windowsOptions", {"hostProcess": True}, "windowsHostProcess"),
    (f"{SC}.windowsOptions", {"hostProcess": False}, None),
    ("ports", [{"containerPort": 80, "hostPort": 8080}], "hostPorts"),
    ("ports", [{"containerPort": 80, "hostPort": 0}], None),
    ("ports", [{"containerPort": 80}], None),
]


def _path_of(field: str, value: Any, prefix: str) -> str:
    """The violation path the check reports for this row."""
    if field.endswith(("seccompProfile", "appArmorProfile")):
        return f"{prefix}.{field}.type"
    if field.endswith("seLinuxOptions"):
        return f"{prefix}.{field}.{next(iter(value))}"
    if field.endswith("windowsOptions"):
        return f"{prefix}.{field}.hostProcess"
    if field == "ports":
        return f"{prefix}.ports[0].hostPort"
    return f"{prefix}.{field}"


@pytest.mark.parametrize("group", GROUPS)
@pytest.mark.parametrize(("field", "value", "check"), CONTAINER_CASES)
def test_container_field_is_judged_in_init_app_and_ephemeral_containers(
    group: str, field: str, value: Any, check: str | None
) -> None:
    prefix = f"spec.{group}[0]"
    pod = setp(restricted_pod(), f"{prefix}.{field}", value)
    if check is None:
        assert allowed(pod, "baseline")
    else:
        assert found(pod, "baseline") == {(check, _path_of(field, value, prefix))}


@pytest.mark.parametrize("group", GROUPS)
@pytest.mark.parametrize("cap", sorted(BASELINE_CAPABILITIES))
def test_each_default_capability_may_be_added_at_baseline(group: str, cap: str) -> None:
    pod = setp(restricted_pod(), f"spec.{group}[0].{SC}.capabilities.add", [cap])
    assert allowed(pod, "baseline")


@pytest.mark.parametrize("group", GROUPS)
@pytest.mark.parametrize("cap", ["NET_RAW", "SYS_ADMIN", "SYS_PTRACE", "CAP_CHOWN", "chown", "ALL"])
def test_a_non_default_capability_is_denied_at_baseline(group: str, cap: str) -> None:
    pod = setp(restricted_pod(), f"spec.{group}[0].{SC}.capabilities.add", ["CHOWN", cap])
    assert found(pod, "baseline") == {
        ("capabilities_baseline", f"spec.{group}[0].{SC}.capabilities.add[1]")
    }


@pytest.mark.parametrize(
    "selinux_type",
    ["", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"],
)
@pytest.mark.parametrize("where", ["spec", "spec.containers[0]"])
def test_each_allowed_selinux_type_passes_at_pod_and_container_level(
    selinux_type: str, where: str
) -> None:
    pod = setp(restricted_pod(), f"{where}.{SC}.seLinuxOptions", {"type": selinux_type})
    assert allowed(pod, "baseline")


@pytest.mark.parametrize(
    ("options", "field"),
    [({"type": "unconfined_t"}, "type"), ({"user": "u"}, "user"), ({"role": "r"}, "role")],
)
def test_pod_level_selinux_type_user_or_role_is_denied(options: dict[str, str], field: str) -> None:
    pod = setp(restricted_pod(), f"spec.{SC}.seLinuxOptions", options)
    assert found(pod, "baseline") == {("seLinuxOptions", f"spec.{SC}.seLinuxOptions.{field}")}


@pytest.mark.parametrize(
    ("field", "value", "check"),
    [
        ("hostNetwork", True, "hostNamespaces"),
        ("hostPID", True, "hostNamespaces"),
        ("hostIPC", True, "hostNamespaces"),
        ("hostNetwork", False, None),
        ("hostPID", False, None),
        ("hostIPC", False, None),
    ],
)
def test_host_namespaces_are_denied_only_when_true(
    field: str, value: bool, check: str | None
) -> None:
    pod = setp(restricted_pod(), f"spec.{field}", value)
    if check is None:
        assert allowed(pod, "baseline")
    else:
        assert found(pod, "baseline") == {(check, f"spec.{field}")}


def test_a_host_path_volume_is_denied_and_an_empty_dir_is_not() -> None:
    pod = setp(restricted_pod(), "spec.volumes", [{"name": "h", "hostPath": {"path": "/"}}])
    assert found(pod, "baseline") == {("hostPathVolumes", "spec.volumes[0].hostPath")}
    pod = setp(restricted_pod(), "spec.volumes", [{"name": "e", "emptyDir": {}}])
    assert allowed(pod, "baseline")


@pytest.mark.parametrize(
    ("value", "denied"),
    [({"type": "Unconfined"}, True), ({"type": "RuntimeDefault"}, False), ({}, True)],
)
def test_pod_level_seccomp_must_not_be_unconfined(value: dict[str, str], denied: bool) -> None:
    pod = setp(restricted_pod(), f"spec.{SC}.seccompProfile", value)
    if denied:
        assert found(pod, "baseline") == {
            ("seccompProfile_baseline", f"spec.{SC}.seccompProfile.type")
        }
    else:
        assert allowed(pod, "baseline")


def test_seccomp_may_be_missing_at_baseline() -> None:
    pod = setp(restricted_pod(), f"spec.{SC}.seccompProfile", None)
    assert allowed(pod, "baseline")


def test_pod_level_apparmor_unconfined_is_denied() -> None:
    pod = setp(restricted_pod(), f"spec.{SC}.appArmorProfile", {"type": "Unconfined"})
    assert found(pod, "baseline") == {("appArmorProfile", f"spec.{SC}.appArmorProfile.type")}


@pytest.mark.parametrize(
    ("value", "denied"),
    [
        ("runtime/default", False),
        ("localhost/my-profile", False),
        ("", False),
        ("unconfined", True),
        ("docker-default", True),
    ],
)
def test_the_deprecated_apparmor_annotation_is_still_judged(value: str, denied: bool) -> None:
    key = "container.apparmor.security.beta.kubernetes.io/app"
    pod = setp(restricted_pod(), "metadata.annotations", {key: value})
    if denied:
        assert found(pod, "baseline") == {("appArmorProfile", f"metadata.annotations[{key}]")}
    else:
        assert allowed(pod, "baseline")


def test_the_seccomp_annotation_is_ignored_by_the_latest_policy() -> None:
    # Kubernetes 1.19+ policy reads the field only; kubelets no longer honour the annotation.
    pod = setp(
        restricted_pod(),
        "metadata.annotations",
        {"seccomp.security.alpha.kubernetes.io/pod": "unconfined"},
    )
    assert allowed(pod, "baseline")


@pytest.mark.parametrize("name", sorted(SAFE_SYSCTLS))
def test_each_safe_sysctl_is_allowed(name: str) -> None:
    pod = setp(restricted_pod(), f"spec.{SC}.sysctls", [{"name": name, "value": "1"}])
    assert allowed(pod, "baseline")


@pytest.mark.parametrize(
    "name", ["kernel.msgmax", "net.ipv4.ip_forward", "vm.swappiness", "kernel.shm_rmid_forced2", ""]
)
def test_an_unsafe_sysctl_is_denied(name: str) -> None:
    sysctls = [{"name": "kernel.shm_rmid_forced", "value": "1"}, {"name": name, "value": "1"}]
    pod = setp(restricted_pod(), f"spec.{SC}.sysctls", sysctls)
    assert found(pod, "baseline") == {("sysctls", f"spec.{SC}.sysctls[1].name")}


def test_the_safe_sysctl_list_is_the_latest_published_one() -> None:
    assert len(SAFE_SYSCTLS) == 14
    assert {"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem", "net.ipv4.tcp_notsent_lowat"} <= SAFE_SYSCTLS


PROBE_HOLDERS = [
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle.postStart",
    "lifecycle.preStop",
]


@pytest.mark.parametrize("group", GROUPS)
@pytest.mark.parametrize("holder", PROBE_HOLDERS)
@pytest.mark.parametrize("handler", ["httpGet", "tcpSocket"])
def test_a_probe_or_hook_host_is_denied_and_an_empty_host_is_not(
    group: str, holder: str, handler: str
) -> None:
    base = f"spec.{group}[0].{holder}.{handler}"
    pod = setp(restricted_pod(), base, {"port": 8080, "host": "169.254.169.254"})
    assert found(pod, "baseline") == {("hostProbesAndHostLifecycle", f"{base}.host")}
    pod = setp(restricted_pod(), base, {"port": 8080, "host": ""})
    assert allowed(pod, "baseline")
    pod = setp(restricted_pod(), base, {"port": 8080})
    assert allowed(pod, "baseline")


def test_pod_level_windows_host_process_is_denied() -> None:
    pod = setp(restricted_pod(), f"spec.{SC}.windowsOptions", {"hostProcess": True})
    assert found(pod, "baseline") == {
        ("windowsHostProcess", f"spec.{SC}.windowsOptions.hostProcess")
    }


def test_proc_mount_unmasked_is_allowed_at_baseline_in_a_user_namespace() -> None:
    pod = setp(restricted_pod(), f"spec.containers[0].{SC}.procMount", "Unmasked")
    assert not allowed(pod, "baseline")
    assert allowed(setp(pod, "spec.hostUsers", False), "baseline")
    assert not allowed(setp(pod, "spec.hostUsers", True), "baseline")


def test_a_minimal_pod_passes_baseline() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "m"},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]},
    }
    assert allowed(pod, "baseline")
