"""PSS restricted, one table per check, both sides of every boundary, every container kind,
pod-level vs container-level precedence, and the Windows and user-namespace exemptions."""

from __future__ import annotations

from typing import Any

import pytest

from stockade.admission._restricted import RESTRICTED_VOLUME_SOURCES

from ._helpers import DELETE, GROUPS, allowed, checks, found, restricted_pod, setp

pytestmark = pytest.mark.guarantee("admit-pss-restricted")

SC = "securityContext"


@pytest.mark.parametrize("group", GROUPS)
@pytest.mark.parametrize(
    ("value", "denied"), [(False, False), (True, True), (DELETE, True), ("false", None)]
)
def test_allow_privilege_escalation_must_be_false(
    group: str, value: Any, denied: bool | None
) -> None:
    path = f"spec.{group}[0].{SC}.allowPrivilegeEscalation"
    pod = setp(restricted_pod(), path, value)
    if denied is None:  # a string is not a boolean: input error, not a guess
        from stockade.admission import ManifestError

        with pytest.raises(ManifestError, match="got string, expected a boolean"):
            found(pod)
    elif denied:
        assert found(pod) == {("allowPrivilegeEscalation", path)}
    else:
        assert allowed(pod)


@pytest.mark.parametrize("group", GROUPS)
def test_capabilities_must_drop_all(group: str) -> None:
    cp = f"spec.{group}[0].{SC}.capabilities"
    assert found(setp(restricted_pod(), f"{cp}.drop", ["NET_RAW"])) == {
        ("capabilities_restricted", f"{cp}.drop")
    }
    assert found(setp(restricted_pod(), cp, DELETE)) == {("capabilities_restricted", f"{cp}.drop")}
    assert found(setp(restricted_pod(), f"spec.{group}[0].{SC}", DELETE)) == {
        ("capabilities_restricted", f"{cp}.drop"),
        ("allowPrivilegeEscalation", f"spec.{group}[0].{SC}.allowPrivilegeEscalation"),
    }
    assert allowed(setp(restricted_pod(), f"{cp}.drop", ["NET_RAW", "ALL"]))
    # "all" in lower case is not "ALL": Kubernetes compares exactly.
    assert not allowed(setp(restricted_pod(), f"{cp}.drop", ["all"]))


@pytest.mark.parametrize("group", GROUPS)
@pytest.mark.parametrize(
    ("cap", "denied"),
    [("NET_BIND_SERVICE", False), ("CHOWN", True), ("NET_RAW", True), ("SYS_ADMIN", True)],
)
def test_only_net_bind_service_may_be_added(group: str, cap: str, denied: bool) -> None:
    path = f"spec.{group}[0].{SC}.capabilities.add"
    pod = setp(restricted_pod(), path, [cap])
    if denied:
        assert found(pod) == {("capabilities_restricted", f"{path}[0]")}
    else:
        assert allowed(pod)


def test_capabilities_restricted_replaces_capabilities_baseline() -> None:
    pod = setp(restricted_pod(), f"spec.containers[0].{SC}.capabilities.add", ["SYS_ADMIN"])
    assert checks(pod, "baseline") == {"capabilities_baseline"}
    assert checks(pod, "restricted") == {"capabilities_restricted"}


@pytest.mark.parametrize(
    ("pod_value", "container_value", "denied_paths"),
    [
        (True, DELETE, set()),  # pod true covers containers that leave it unset
        (True, True, set()),
        (True, False, {"spec.containers[0].securityContext.runAsNonRoot"}),  # container overrides
        (DELETE, True, {"init", "debug"}),  # only app set it; the others are uncovered
        (False, True, {"pod", "init", "debug"}),
        (False, DELETE, {"pod", "init", "app", "debug"}),
    ],
)
def test_run_as_non_root_pod_level_and_container_level_precedence(
    pod_value: Any, container_value: Any, denied_paths: set[str]
) -> None:
    pod = setp(restricted_pod(), f"spec.{SC}.runAsNonRoot", pod_value)
    pod = setp(pod, f"spec.containers[0].{SC}.runAsNonRoot", container_value)
    names = {
        "pod": f"spec.{SC}.runAsNonRoot",
        "init": f"spec.initContainers[0].{SC}.runAsNonRoot",
        "app": f"spec.containers[0].{SC}.runAsNonRoot",
        "debug": f"spec.ephemeralContainers[0].{SC}.runAsNonRoot",
    }
    expected = {("runAsNonRoot", names.get(p, p)) for p in denied_paths}
    assert found(pod) == expected


@pytest.mark.parametrize("group", GROUPS)
def test_a_container_that_sets_run_as_non_root_false_is_denied_in_every_group(group: str) -> None:
    path = f"spec.{group}[0].{SC}.runAsNonRoot"
    assert found(setp(restricted_pod(), path, False)) == {("runAsNonRoot", path)}


@pytest.mark.parametrize(
    "where", ["spec", "spec.initContainers[0]", "spec.containers[0]", "spec.ephemeralContainers[0]"]
)
@pytest.mark.parametrize(
    ("uid", "denied"), [(0, True), (1, False), (65532, False), (DELETE, False)]
)
def test_run_as_user_zero_is_denied_and_any_other_uid_or_unset_is_not(
    where: str, uid: Any, denied: bool
) -> None:
    path = f"{where}.{SC}.runAsUser"
    pod = setp(restricted_pod(), path, uid)
    if denied:
        assert found(pod) == {("runAsUser", path)}
    else:
        assert allowed(pod)


def test_user_namespace_pods_may_run_as_uid_zero_and_without_run_as_non_root() -> None:
    pod = setp(restricted_pod(), f"spec.{SC}.runAsUser", 0)
    pod = setp(pod, f"spec.{SC}.runAsNonRoot", False)
    assert checks(pod) == {"runAsUser", "runAsNonRoot"}
    assert allowed(setp(pod, "spec.hostUsers", False))
    assert checks(setp(pod, "spec.hostUsers", True)) == {"runAsUser", "runAsNonRoot"}


@pytest.mark.parametrize(
    ("pod_type", "container_type", "expected"),
    [
        ("RuntimeDefault", None, set()),
        ("Localhost", None, set()),
        (
            "RuntimeDefault",
            "Unconfined",
            {"spec.containers[0].securityContext.seccompProfile.type"},
        ),
        ("Unconfined", None, {"pod", "init", "app", "debug"}),
        ("Unconfined", "RuntimeDefault", {"pod", "init", "debug"}),
        (None, "RuntimeDefault", {"init", "debug"}),
        (None, None, {"init", "app", "debug"}),
    ],
)
def test_seccomp_pod_level_and_container_level_precedence(
    pod_type: str | None, container_type: str | None, expected: set[str]
) -> None:
    pod = setp(
        restricted_pod(),
        f"spec.{SC}.seccompProfile",
        {"type": pod_type} if pod_type else DELETE,
    )
    if container_type:
        pod = setp(pod, f"spec.containers[0].{SC}.seccompProfile", {"type": container_type})
    names = {
        "pod": f"spec.{SC}.seccompProfile.type",
        "init": f"spec.initContainers[0].{SC}.seccompProfile",
        "app": f"spec.containers[0].{SC}.seccompProfile",
        "debug": f"spec.ephemeralContainers[0].{SC}.seccompProfile",
    }
    assert found(pod) == {("seccompProfile_restricted", names.get(p, p)) for p in expected}


def test_seccomp_restricted_replaces_seccomp_baseline() -> None:
    pod = setp(restricted_pod(), f"spec.{SC}.seccompProfile.type", "Unconfined")
    assert checks(pod, "baseline") == {"seccompProfile_baseline"}
    assert checks(pod, "restricted") == {"seccompProfile_restricted"}


VOLUMES: dict[str, Any] = {
    "configMap": {"name": "cm"},
    "csi": {"driver": "x.csi"},
    "downwardAPI": {"items": []},
    "emptyDir": {},
    "ephemeral": {"volumeClaimTemplate": {"spec": {}}},
    "image": {"reference": "ghcr.io/acme/data@sha256:" + "b" * 64},
    "persistentVolumeClaim": {"claimName": "c"},
    "projected": {"sources": []},
    "secret": {"secretName": "s"},
}


def test_the_restricted_volume_list_is_exactly_the_documented_one() -> None:
    assert set(VOLUMES) == RESTRICTED_VOLUME_SOURCES


@pytest.mark.parametrize("source", sorted(VOLUMES))
def test_each_allowed_volume_type_passes_restricted(source: str) -> None:
    pod = setp(restricted_pod(), "spec.volumes", [{"name": "v", source: VOLUMES[source]}])
    assert allowed(pod)


@pytest.mark.parametrize(
    "source",
    [
        "hostPath",
        "gcePersistentDisk",
        "awsElasticBlockStore",
        "gitRepo",
        "nfs",
        "iscsi",
        "glusterfs",
        "rbd",
        "flexVolume",
        "cinder",
        "cephfs",
        "flocker",
        "fc",
        "azureFile",
        "vsphereVolume",
        "quobyte",
        "azureDisk",
        "portworxVolume",
        "photonPersistentDisk",
        "scaleIO",
        "storageos",
        "someFutureVolumeType",
    ],
)
def test_every_other_volume_type_is_denied_at_restricted(source: str) -> None:
    pod = setp(
        restricted_pod(),
        "spec.volumes",
        [{"name": "ok", "emptyDir": {}}, {"name": "v", source: {"x": 1}}],
    )
    assert found(pod) == {("restrictedVolumes", f"spec.volumes[1].{source}")}


def test_restricted_volumes_replaces_host_path_volumes() -> None:
    pod = setp(restricted_pod(), "spec.volumes", [{"name": "h", "hostPath": {"path": "/etc"}}])
    assert checks(pod, "baseline") == {"hostPathVolumes"}
    assert checks(pod, "restricted") == {"restrictedVolumes"}


def test_a_volume_with_no_source_is_an_empty_dir_as_kubernetes_defaults_it() -> None:
    assert allowed(setp(restricted_pod(), "spec.volumes", [{"name": "v"}]))


@pytest.mark.parametrize("group", GROUPS)
def test_unmasked_proc_mount_is_denied_at_restricted_even_in_a_user_namespace(group: str) -> None:
    path = f"spec.{group}[0].{SC}.procMount"
    pod = setp(setp(restricted_pod(), path, "Unmasked"), "spec.hostUsers", False)
    assert found(pod) == {("procMount_restricted", path)}
    assert allowed(setp(pod, path, "Default"))


def _bare_windows_pod() -> dict[str, Any]:
    pod = setp(restricted_pod(), "spec.os", {"name": "windows"})
    for group in ("initContainers", "containers", "ephemeralContainers"):
        pod = setp(pod, f"spec.{group}[0].{SC}", DELETE)
    return setp(pod, f"spec.{SC}.seccompProfile", DELETE)


def test_windows_pods_are_exempt_from_privilege_escalation_capabilities_and_seccomp() -> None:
    pod = _bare_windows_pod()
    assert allowed(pod)
    linux = setp(pod, "spec.os", {"name": "linux"})
    assert checks(linux) == {
        "allowPrivilegeEscalation",
        "capabilities_restricted",
        "seccompProfile_restricted",
    }


def test_windows_pods_are_not_exempt_from_run_as_non_root_or_run_as_user() -> None:
    pod = setp(_bare_windows_pod(), f"spec.{SC}.runAsNonRoot", DELETE)
    pod = setp(pod, f"spec.{SC}.runAsUser", 0)
    assert checks(pod) == {"runAsNonRoot", "runAsUser"}


def test_windows_exemption_never_lets_restricted_allow_what_baseline_denies() -> None:
    pod = setp(_bare_windows_pod(), f"spec.containers[0].{SC}.capabilities.add", ["SYS_ADMIN"])
    pod = setp(pod, f"spec.{SC}.seccompProfile", {"type": "Unconfined"})
    assert checks(pod, "baseline") == {"capabilities_baseline", "seccompProfile_baseline"}
    assert checks(pod, "restricted") == {"capabilities_restricted", "seccompProfile_restricted"}
