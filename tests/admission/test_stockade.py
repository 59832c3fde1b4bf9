"""The stockade level: restricted plus gVisor, pinned images from allowed registries, resources,
read-only root, no service-account token, granted secrets only, deadline, AppArmor."""

from __future__ import annotations

from typing import Any

import pytest

from stockade.admission import StockadeRules, evaluate

from ._helpers import DELETE, DIGEST, RULES, allowed, checks, found, setp, stockade_pod

SC = "securityContext"
CGROUPS = ("initContainers", "containers")


def test_the_hardened_pod_passes_stockade() -> None:
    assert allowed(stockade_pod(), "stockade")


def test_stockade_includes_every_restricted_check() -> None:
    pod = setp(stockade_pod(), f"spec.containers[0].{SC}.allowPrivilegeEscalation", True)
    assert checks(pod, "stockade") == {"allowPrivilegeEscalation"}


@pytest.mark.guarantee("admit-gvisor-required")
@pytest.mark.parametrize(
    ("value", "ok"),
    [("gvisor", True), ("runc", False), ("", False), (DELETE, False), ("gVisor", False)],
)
def test_runtime_class_must_be_gvisor(value: Any, ok: bool) -> None:
    pod = setp(stockade_pod(), "spec.runtimeClassName", value)
    if ok:
        assert allowed(pod, "stockade")
    else:
        assert found(pod, "stockade") == {("stockade_runtimeClass", "spec.runtimeClassName")}


@pytest.mark.guarantee("admit-digest-required")
@pytest.mark.parametrize("group", CGROUPS)
@pytest.mark.parametrize(
    ("image", "ok"),
    [
        (f"ghcr.io/acme/tool@{DIGEST}", True),
        (f"ghcr.io/acme/tool:1.0@{DIGEST}", True),
        ("ghcr.io/acme/tool:1.0", False),
        ("ghcr.io/acme/tool", False),
        ("ghcr.io/acme/tool@sha256:" + "a" * 63, False),
        ("ghcr.io/acme/tool@sha256:" + "A" * 64, False),
        ("ghcr.io/acme/tool@sha512:" + "a" * 128, False),
        (f"ghcr.io/acme/Tool@{DIGEST}", False),
    ],
)
def test_images_must_be_pinned_by_sha256_digest(group: str, image: str, ok: bool) -> None:
    path = f"spec.{group}[0].image"
    pod = setp(stockade_pod(), path, image)
    if ok:
        assert allowed(pod, "stockade")
    else:
        assert ("stockade_imageDigest", path) in found(pod, "stockade")


@pytest.mark.guarantee("admit-digest-required")
def test_a_container_without_an_image_is_denied() -> None:
    pod = setp(stockade_pod(), "spec.containers[0].image", DELETE)
    assert checks(pod, "stockade") == {"stockade_imageDigest", "stockade_registryAllowlist"}


@pytest.mark.guarantee("admit-registry-allowlist")
@pytest.mark.parametrize(
    ("image", "patterns", "ok"),
    [
        ("ghcr.io/acme/tool", ("ghcr.io/acme/*",), True),
        ("ghcr.io/acme/team/tool", ("ghcr.io/acme/*",), True),
        ("ghcr.io/acmex/tool", ("ghcr.io/acme/*",), False),
        ("ghcr.io/other/tool", ("ghcr.io/acme/*",), False),
        ("evil.io/acme/tool", ("ghcr.io/acme/*",), False),
        ("ghcr.io.evil.io/acme/tool", ("ghcr.io/acme/*",), False),
        ("nginx", ("docker.io/library/*",), True),
        ("library/nginx", ("docker.io/library/*",), True),
        ("docker.io/nginx", ("docker.io/library/*",), True),
        ("index.docker.io/library/nginx", ("docker.io/library/*",), True),
        ("nginx", ("ghcr.io/acme/*",), False),
        ("acme/tool", ("docker.io/acme/*",), True),
        ("acme/tool", ("ghcr.io/acme/*",), False),
        ("localhost:5000/acme/tool", ("localhost:5000/acme/*",), True),
        ("localhost:5000/acme/tool", ("localhost:5001/acme/*",), False),
        ("ghcr.io/acme/tool", ("ghcr.io/acme/tool",), True),
        ("ghcr.io/acme/tool2", ("ghcr.io/acme/tool",), False),
        ("ghcr.io/acme/tool", ("ghcr.io/acme/tool", "ghcr.io/other/*"), True),
        ("GHCR.IO/acme/tool", ("ghcr.io/acme/*",), True),
        ("ghcr.io/acme/tool", (), False),
    ],
)
def test_registry_allowlist_with_docker_defaults(
    image: str, patterns: tuple[str, ...], ok: bool
) -> None:
    pod = setp(stockade_pod(), "spec.containers[0].image", f"{image}@{DIGEST}")
    pod = setp(pod, "spec.initContainers", DELETE)
    result = evaluate(pod, "stockade", StockadeRules.of(patterns), {"stockade_registryAllowlist"})
    assert (not result.violations) is ok
    if not ok:
        assert result.violations[0].path == "spec.containers[0].image"


@pytest.mark.guarantee("admit-registry-allowlist")
def test_an_empty_allowlist_denies_every_image() -> None:
    result = evaluate(stockade_pod(), "stockade", StockadeRules(), None)
    assert {v.check for v in result.violations} == {"stockade_registryAllowlist"}
    assert len(result.violations) == 2  # init and app container


@pytest.mark.guarantee("admit-registry-allowlist")
def test_init_containers_are_held_to_the_allowlist() -> None:
    pod = setp(stockade_pod(), "spec.initContainers[0].image", f"docker.io/evil/x@{DIGEST}")
    assert found(pod, "stockade") == {
        ("stockade_registryAllowlist", "spec.initContainers[0].image")
    }


@pytest.mark.parametrize("group", CGROUPS)
@pytest.mark.parametrize(
    "field", ["limits.cpu", "limits.memory", "requests.cpu", "requests.memory"]
)
@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (DELETE, False),
        ("0", False),
        (0, False),
        ("0m", False),
        ("-1", False),
        ("lots", False),
        (True, False),
        ("1", True),
        (2, True),
        ("0.5", True),
        ("64Mi", True),
    ],
)
def test_cpu_and_memory_limits_and_requests_are_required(
    group: str, field: str, value: Any, ok: bool
) -> None:
    path = f"spec.{group}[0].resources.{field}"
    pod = setp(stockade_pod(), path, value)
    if ok:
        assert allowed(pod, "stockade")
    else:
        assert found(pod, "stockade") == {("stockade_resources", path)}


@pytest.mark.parametrize("group", CGROUPS)
def test_an_ephemeral_storage_limit_is_required(group: str) -> None:
    path = f"spec.{group}[0].resources.limits.ephemeral-storage"
    assert found(setp(stockade_pod(), path, DELETE), "stockade") == {
        ("stockade_ephemeralStorage", path)
    }
    assert found(setp(stockade_pod(), path, "0"), "stockade") == {
        ("stockade_ephemeralStorage", path)
    }
    assert allowed(setp(stockade_pod(), path, "1Gi"), "stockade")


def test_ephemeral_containers_are_denied_at_stockade_since_they_cannot_declare_resources() -> None:
    pod = setp(
        stockade_pod(), "spec.ephemeralContainers", [stockade_pod()["spec"]["containers"][0]]
    )
    assert checks(pod, "stockade") == {"stockade_resources", "stockade_ephemeralStorage"}


@pytest.mark.parametrize("group", CGROUPS)
@pytest.mark.parametrize(("value", "ok"), [(True, True), (False, False), (DELETE, False)])
def test_read_only_root_filesystem_is_required(group: str, value: Any, ok: bool) -> None:
    path = f"spec.{group}[0].{SC}.readOnlyRootFilesystem"
    pod = setp(stockade_pod(), path, value)
    if ok:
        assert allowed(pod, "stockade")
    else:
        assert found(pod, "stockade") == {("stockade_readOnlyRootFilesystem", path)}


@pytest.mark.parametrize(("value", "ok"), [(False, True), (True, False), (DELETE, False)])
def test_service_account_token_automount_must_be_off(value: Any, ok: bool) -> None:
    pod = setp(stockade_pod(), "spec.automountServiceAccountToken", value)
    assert allowed(pod, "stockade") is ok


SECRET_REFS = [
    (
        "spec.containers[0].env",
        [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "{n}", "key": "k"}}}],
        "spec.containers[0].env[0].valueFrom.secretKeyRef.name",
    ),
    (
        "spec.initContainers[0].env",
        [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "{n}", "key": "k"}}}],
        "spec.initContainers[0].env[0].valueFrom.secretKeyRef.name",
    ),
    (
        "spec.containers[0].envFrom",
        [{"secretRef": {"name": "{n}"}}],
        "spec.containers[0].envFrom[0].secretRef.name",
    ),
    (
        "spec.volumes",
        [{"name": "v", "secret": {"secretName": "{n}"}}],
        "spec.volumes[0].secret.secretName",
    ),
    (
        "spec.volumes",
        [
            {
                "name": "v",
                "projected": {
                    "sources": [{"configMap": {"name": "c"}}, {"secret": {"name": "{n}"}}]
                },
            }
        ],
        "spec.volumes[0].projected.sources[1].secret.name",
    ),
    (
        "spec.volumes",
        [{"name": "v", "csi": {"driver": "d", "nodePublishSecretRef": {"name": "{n}"}}}],
        "spec.volumes[0].csi.nodePublishSecretRef.name",
    ),
]


def _fill(value: Any, name: str) -> Any:
    if isinstance(value, dict):
        return {k: _fill(v, name) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, name) for v in value]
    return name if value == "{n}" else value


@pytest.mark.guarantee("admit-secrets-granted-only")
@pytest.mark.parametrize(("where", "value", "path"), SECRET_REFS)
@pytest.mark.parametrize(
    ("secret", "ok"), [("granted", True), ("db-password", False), ("", False), ("Granted", False)]
)
def test_only_granted_secrets_may_be_read(
    where: str, value: Any, path: str, secret: str, ok: bool
) -> None:
    pod = setp(stockade_pod(), where, _fill(value, secret))
    if ok:
        assert allowed(pod, "stockade"), RULES.granted_secrets
    else:
        assert found(pod, "stockade") == {("stockade_secrets", path)}


@pytest.mark.guarantee("admit-secrets-granted-only")
def test_a_secret_reference_without_a_name_is_denied() -> None:
    pod = setp(stockade_pod(), "spec.containers[0].envFrom", [{"secretRef": {}}])
    assert checks(pod, "stockade") == {"stockade_secrets"}


def test_config_map_env_is_not_a_secret() -> None:
    env = [
        {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}},
        {"name": "B", "value": "x"},
    ]
    assert allowed(setp(stockade_pod(), "spec.containers[0].env", env), "stockade")


@pytest.mark.parametrize(
    ("value", "ok"), [(300, True), (1, True), (0, False), (-5, False), (DELETE, False)]
)
def test_pods_need_a_positive_active_deadline(value: Any, ok: bool) -> None:
    pod = setp(stockade_pod(), "spec.activeDeadlineSeconds", value)
    if ok:
        assert allowed(pod, "stockade")
    else:
        assert found(pod, "stockade") == {("stockade_activeDeadline", "spec.activeDeadlineSeconds")}


@pytest.mark.parametrize(
    ("pod_type", "container_type", "ok"),
    [
        ("RuntimeDefault", None, True),
        ("Localhost", None, True),
        (None, None, False),
        (None, "RuntimeDefault", False),  # only the app container set it; init has none
        ("RuntimeDefault", "Unconfined", False),
    ],
)
def test_apparmor_runtime_default_or_localhost_is_required_on_linux(
    pod_type: str | None, container_type: str | None, ok: bool
) -> None:
    pod = setp(
        stockade_pod(), f"spec.{SC}.appArmorProfile", {"type": pod_type} if pod_type else DELETE
    )
    if container_type:
        pod = setp(pod, f"spec.containers[0].{SC}.appArmorProfile", {"type": container_type})
    assert allowed(pod, "stockade") is ok
    if not ok:
        assert "stockade_appArmorRequired" in checks(pod, "stockade")


def test_windows_pods_are_denied_at_stockade() -> None:
    pod = setp(stockade_pod(), "spec.os", {"name": "windows"})
    assert checks(pod, "stockade") == {"stockade_linuxOnly"}
    assert allowed(setp(stockade_pod(), "spec.os", {"name": "linux"}), "stockade")


@pytest.mark.parametrize("kind", ["serviceAccountToken", "podCertificate"])
def test_a_projected_credential_is_denied_even_with_automount_off(kind: str) -> None:
    sources = [{"configMap": {"name": "c"}}, {kind: {"path": "token"}}]
    pod = setp(stockade_pod(), "spec.volumes", [{"name": "v", "projected": {"sources": sources}}])
    assert found(pod, "stockade") == {
        ("stockade_serviceAccountToken", f"spec.volumes[0].projected.sources[1].{kind}")
    }


@pytest.mark.guarantee("admit-secrets-granted-only")
def test_a_secrets_store_csi_volume_is_denied_whatever_is_granted() -> None:
    csi = {
        "driver": "secrets-store.csi.k8s.io",
        "volumeAttributes": {"secretProviderClass": "granted"},  # pragma: allowlist secret
    }
    pod = setp(stockade_pod(), "spec.volumes", [{"name": "v", "csi": csi}])
    assert found(pod, "stockade") == {("stockade_secrets", "spec.volumes[0].csi.driver")}
    other = setp(pod, "spec.volumes[0].csi.driver", "ebs.csi.aws.com")
    assert allowed(other, "stockade")
