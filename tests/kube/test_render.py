"""Rendering: the hardened Pod and the namespace, network and quota objects around it."""

from __future__ import annotations

import base64

import pytest

from stockade.admission import Level, ManifestError, Verdict, evaluate
from stockade.kube import (
    ADMISSION_KINDS,
    KubeError,
    check_rendered,
    dump_all,
    redact,
    render,
    rules_for,
    run_fs_group,
    slug,
    verify_rendered,
)
from stockade.models import Bind, Runtime

from ._helpers import REGISTRIES, TOKEN, allowlist, objs_of, one, pod_spec, render_input, spec


@pytest.mark.guarantee("k8s-pod-hardened")
def test_the_pod_runs_on_gvisor_with_a_digest_pinned_image_and_a_restricted_context() -> None:
    ps = pod_spec(objs_of())
    assert ps["runtimeClassName"] == "gvisor"
    assert ps["automountServiceAccountToken"] is False
    assert ps["enableServiceLinks"] is False
    assert ps["hostNetwork"] is False
    assert ps["hostPID"] is False
    assert ps["hostIPC"] is False
    assert all("hostPath" not in v for v in ps["volumes"])
    psc = ps["securityContext"]
    assert psc["runAsNonRoot"] is True
    assert psc["runAsUser"] == 65532
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert psc["appArmorProfile"] == {"type": "RuntimeDefault"}
    (c,) = ps["containers"]
    assert c["image"] == "ghcr.io/acme/tool@sha256:" + "ab" * 32
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["privileged"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert isinstance(sc["runAsUser"], int)
    assert c["command"] == ["/bin/tool", "--stdio"]


@pytest.mark.guarantee("k8s-pod-hardened")
def test_the_pod_has_no_cluster_dns() -> None:
    ps = pod_spec(objs_of())
    assert ps["dnsPolicy"] == "None"
    assert ps["dnsConfig"]["nameservers"] == ["127.0.0.1"]


@pytest.mark.guarantee("k8s-pod-bounded")
def test_the_pod_has_requests_limits_ephemeral_storage_and_a_deadline() -> None:
    ps = pod_spec(objs_of(spec(cpu_seconds=30, timeout_s=60.5, memory_mb=300, tmp_size_mb=10)))
    (c,) = ps["containers"]
    want = {"cpu": "491m", "memory": "300Mi", "ephemeral-storage": "74Mi"}
    assert c["resources"] == {"requests": want, "limits": want}
    assert ps["activeDeadlineSeconds"] == 61
    assert ps["volumes"][0] == {"name": "tmp", "emptyDir": {"sizeLimit": "10Mi"}}


@pytest.mark.guarantee("k8s-pod-bounded")
@pytest.mark.parametrize(
    ("cpu_seconds", "timeout_s"), [(10, 60), (4, 3600), (3600, 60), (7, 7), (0.5, 1), (1, 1.5)]
)
def test_cpu_rate_times_deadline_never_exceeds_the_cpu_budget(
    cpu_seconds: float, timeout_s: float
) -> None:
    ps = pod_spec(objs_of(spec(cpu_seconds=cpu_seconds, timeout_s=timeout_s)))
    millicores = int(ps["containers"][0]["resources"]["limits"]["cpu"][:-1])
    assert 1 <= millicores <= 1000
    assert millicores / 1000 * ps["activeDeadlineSeconds"] <= cpu_seconds + 1e-9


@pytest.mark.guarantee("k8s-refuse-unappliable")
def test_a_cpu_budget_below_one_millicore_per_second_is_refused() -> None:
    with pytest.raises(KubeError, match="smallest CPU limit"):
        objs_of(spec(cpu_seconds=0.05, timeout_s=86400))


@pytest.mark.guarantee("k8s-refuse-unappliable")
def test_host_binds_are_refused_not_dropped() -> None:
    with pytest.raises(KubeError, match="hostPath"):
        objs_of(spec(binds=(Bind(source="/data", target="/data"),)))


@pytest.mark.guarantee("k8s-refuse-unappliable")
def test_the_namespaces_runtime_is_refused() -> None:
    with pytest.raises(KubeError, match="gVisor only"):
        objs_of(spec(runtime=Runtime.NAMESPACES))


@pytest.mark.guarantee("k8s-refuse-unappliable")
@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"egress_proxy_ip": None}, "Service IP"),
        ({"egress_token": None}, "Service IP"),
        ({"egress_proxy_ip": "proxy.local"}, "not an IP"),
        ({"egress_proxy_ip": "127.0.0.1"}, "unicast"),
        ({"egress_proxy_ip": "0.0.0.0"}, "unicast"),  # noqa: S104 - a refused value
        ({"egress_token": "short"}, "32 characters"),
    ],
)
def test_an_allowlist_without_a_usable_proxy_is_refused(kw: dict[str, str], match: str) -> None:
    with pytest.raises(KubeError, match=match):
        objs_of(spec(network=allowlist()), **kw)


@pytest.mark.parametrize("run_id", ["", "UPPER", "-x", "x-", "a" * 41, "a_b", "a.b", "r\n1"])
def test_run_ids_unusable_in_kubernetes_names_are_refused(run_id: str) -> None:
    with pytest.raises(KubeError, match="run id"):
        render_input(run_id=run_id)


@pytest.mark.parametrize("ns", ["", "Stockade", "a" * 64, "kube_system", "-x"])
def test_invalid_namespaces_are_refused(ns: str) -> None:
    with pytest.raises(KubeError, match="namespace"):
        render_input(namespace=ns)


def test_labels_link_every_run_object_to_the_run_id() -> None:
    objs = objs_of(spec(network=allowlist(), secrets=("API_TOKEN",)))
    for kind, role in [
        ("Pod", None),
        ("Secret", "secrets"),
        ("Secret", "egress-token"),
        ("NetworkPolicy", "egress"),
    ]:
        assert one(objs, kind, role)["metadata"]["labels"]["stockade.dev/run-id"] == "r1"


@pytest.mark.guarantee("k8s-namespace-restricted")
def test_the_namespace_enforces_audits_and_warns_restricted() -> None:
    labels = one(objs_of(), "Namespace")["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"


@pytest.mark.guarantee("k8s-default-deny-egress")
def test_a_network_none_run_gets_only_the_default_deny_policy() -> None:
    objs = objs_of()
    (np,) = [o for o in objs if o["kind"] == "NetworkPolicy"]
    assert np["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    assert "HTTPS_PROXY" not in str(pod_spec(objs))


@pytest.mark.guarantee("k8s-default-deny-egress")
def test_an_allowlist_run_may_reach_only_the_proxy_port_and_never_dns() -> None:
    objs = objs_of(spec(network=allowlist("api.github.com")))
    np = one(objs, "NetworkPolicy", "egress")
    assert np["spec"]["podSelector"]["matchLabels"]["stockade.dev/run-id"] == "r1"
    (rule,) = np["spec"]["egress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 3128}]
    (peer,) = rule["to"]
    assert "ipBlock" not in peer
    assert peer["podSelector"] == {
        "matchLabels": {"app.kubernetes.io/name": "stockade-egress-proxy"}
    }
    assert "ingress" not in np["spec"]
    assert one(objs, "NetworkPolicy", "default-deny")["spec"]["podSelector"] == {}
    assert one(objs, "Service")["spec"]["clusterIP"] == "10.96.0.50"


@pytest.mark.guarantee("k8s-default-deny-egress")
def test_the_per_run_proxy_token_lives_in_a_secret_not_in_the_pod_spec() -> None:
    objs = objs_of(spec(network=allowlist("api.github.com")))
    assert TOKEN not in str(one(objs, "Pod"))
    env = {e["name"]: e for e in pod_spec(objs)["containers"][0]["env"]}
    ref = env["HTTPS_PROXY"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "stockade-r1-egress", "key": "proxy-url"}
    data = one(objs, "Secret", "egress-token")["data"]
    assert base64.b64decode(data["token"]).decode() == TOKEN
    assert base64.b64decode(data["domains"]).decode() == "api.github.com"
    assert base64.b64decode(data["proxy-url"]).decode().startswith(f"http://r1:{TOKEN}@10.96.0.50")


@pytest.mark.guarantee("k8s-default-deny-egress")
def test_tokens_differ_between_runs_only_through_the_input() -> None:
    a = one(objs_of(spec(network=allowlist()), run_id="r1"), "Secret", "egress-token")
    b = one(
        objs_of(spec(network=allowlist()), run_id="r2", egress_token="u" * 43),
        "Secret",
        "egress-token",
    )
    assert a["data"]["token"] != b["data"]["token"]
    assert a["metadata"]["name"] != b["metadata"]["name"]


@pytest.mark.guarantee("k8s-secrets-granted-only")
def test_no_secret_is_rendered_or_mounted_without_a_grant() -> None:
    objs = objs_of()
    assert [o for o in objs if o["kind"] == "Secret"] == []
    assert [v["name"] for v in pod_spec(objs)["volumes"]] == ["tmp"]


@pytest.mark.guarantee("k8s-secrets-granted-only")
def test_granted_secrets_are_a_read_only_0440_projected_volume_with_a_per_run_fs_group() -> None:
    objs = objs_of(spec(secrets=("API_TOKEN", "OTHER")))
    ps = pod_spec(objs)
    vol = next(v for v in ps["volumes"] if v["name"] == "secrets")
    assert vol["projected"]["defaultMode"] == 0o440
    (src,) = vol["projected"]["sources"]
    assert src["secret"]["name"] == "stockade-r1-secrets"
    assert {i["key"] for i in src["secret"]["items"]} == {"API_TOKEN", "OTHER"}
    assert all(i["mode"] == 0o440 for i in src["secret"]["items"])
    mount = next(m for m in ps["containers"][0]["volumeMounts"] if m["name"] == "secrets")
    assert mount == {"name": "secrets", "mountPath": "/run/secrets", "readOnly": True}
    assert ps["securityContext"]["fsGroup"] == run_fs_group("r1")
    assert ps["securityContext"]["fsGroup"] not in (0, 65532)
    assert run_fs_group("r1") != run_fs_group("r2")
    assert "secretKeyRef" not in str(ps["containers"][0]["env"])


@pytest.mark.guarantee("k8s-secrets-granted-only")
def test_secret_values_must_match_the_grant_exactly() -> None:
    with pytest.raises(KubeError, match="do not match the grant"):
        objs_of(spec(secrets=("A",)), secret_values={"A": b"x", "B": b"y"})
    with pytest.raises(KubeError, match="do not match the grant"):
        objs_of(spec(secrets=("A",)), secret_values={})


@pytest.mark.guarantee("k8s-secrets-granted-only")
def test_printed_manifests_never_show_secret_values() -> None:
    objs = objs_of(
        spec(network=allowlist(), secrets=("API_TOKEN",)),
        secret_values={"API_TOKEN": b"hunter2-very-secret"},
    )
    text = dump_all(objs)
    for needle in (TOKEN, "hunter2", base64.b64encode(b"hunter2-very-secret").decode()):
        assert needle not in text
    assert "API_TOKEN" in text  # the key says what is granted
    assert base64.b64encode(TOKEN.encode()).decode() in str(objs)  # applied objects keep it
    assert redact(one(objs, "Pod")) is one(objs, "Pod")


@pytest.mark.guarantee("k8s-render-admitted")
@pytest.mark.parametrize(
    "s",
    [spec(), spec(network=allowlist(), secrets=("API_TOKEN",)), spec(env=(("MODE", "x"),))],
    ids=["none", "allowlist+secret", "env"],
)
def test_every_object_admission_judges_passes_at_level_stockade(s: object) -> None:
    objs = objs_of(spec() if not hasattr(s, "argv") else s)  # type: ignore[arg-type]
    rules = rules_for(objs, REGISTRIES)
    judged = [o for o in objs if o["kind"] in ADMISSION_KINDS]
    assert "Pod" in [o["kind"] for o in judged]
    for o in judged:
        assert evaluate(o, Level.STOCKADE, rules, only=None).verdict == Verdict.ALLOW
    assert check_rendered(objs, rules) == ()


@pytest.mark.guarantee("k8s-render-admitted")
def test_cluster_policy_kinds_are_outside_admission_and_checked_by_the_renderer() -> None:
    objs = objs_of(spec(network=allowlist()))
    rules = rules_for(objs, REGISTRIES)
    for o in objs:
        if o["kind"] not in ADMISSION_KINDS:
            with pytest.raises(ManifestError):
                evaluate(o, Level.STOCKADE, rules, only=None)


@pytest.mark.guarantee("k8s-render-admitted")
def test_a_render_whose_image_registry_is_not_allowed_is_refused() -> None:
    objs = objs_of()
    with pytest.raises(KubeError, match="stockade_registryAllowlist"):
        verify_rendered(objs, ("docker.io/library/*",))
    verify_rendered(objs, REGISTRIES)


@pytest.mark.guarantee("k8s-render-admitted")
@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (
            lambda o: o["metadata"]["labels"].update(
                {"pod-security.kubernetes.io/enforce": "baseline"}
            ),
            "enforce",
        ),
        (
            lambda o: o["spec"].update({"egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}),
            "default-deny",
        ),
    ],
    ids=["namespace-baseline", "default-deny-widened"],
)
def test_the_self_check_catches_weakened_cluster_objects(mutate: object, match: str) -> None:
    objs = objs_of()
    kind = "Namespace" if "namespace" in match or match == "enforce" else "NetworkPolicy"
    target = one(objs, kind)
    mutate(target)  # type: ignore[operator]
    problems = check_rendered(objs, rules_for(objs, REGISTRIES))
    assert any(match in p for p in problems), problems


def test_an_egress_rule_to_dns_or_any_address_is_a_self_check_problem() -> None:
    objs = objs_of(spec(network=allowlist()))
    np = one(objs, "NetworkPolicy", "egress")
    np["spec"]["egress"].append({"ports": [{"protocol": "UDP", "port": 53}]})
    problems = check_rendered(objs, rules_for(objs, REGISTRIES))
    assert any("reaches more than the egress proxy" in p for p in problems)
    assert any("proxy port only" in p for p in problems)


def test_render_is_deterministic() -> None:
    assert render(render_input()) == render(render_input())


def test_slugs_are_dns_labels_and_keep_distinct_names_distinct() -> None:
    assert slug("docs-search") == "docs-search"
    assert slug("Docs_Search") != slug("docs-search")
    assert slug("Docs_Search").startswith("docs-search-")
    assert slug("___") != slug("..")
