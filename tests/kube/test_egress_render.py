"""The egress proxy rendered for allowlist runs: stockade's own proxy as a gVisor Deployment with
the restricted context, its Service, the per-run allowlist (ConfigMap) and token hash (Secret),
and NetworkPolicies (workloads reach only the proxy's port; the proxy reaches DNS and 80/443;
nothing else reaches it). Admitted, schema-valid, refused without a pinned image; the merged
entries are added and removed per run."""

from __future__ import annotations

import base64
import copy
import hashlib
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stockade.kube import (
    ADMISSION_KINDS,
    KubeError,
    Manifest,
    RecordStore,
    RollbackRecord,
    RunParams,
    apply_run,
    check_rendered,
    proxy_policy_spec,
    ref_of,
    render_server,
    rollback_run,
    rules_for,
    runtime_class,
)
from stockade.models import PinnedImage
from stockade.testing import FakeClock, FakeCluster

from ._helpers import (
    PROXY_DIGEST,
    PROXY_IP,
    REGISTRIES,
    TOKEN,
    allowlist,
    example_policy,
    objs_of,
    one,
    spec,
)
from ._schema import validate_fast

ALLOW = spec(network=allowlist("api.example.com", "*.github.com"))


def render(run_id: str = "r1", **kw: object) -> tuple[Manifest, ...]:
    return objs_of(ALLOW, run_id=run_id, **kw)


def deployment(objs: tuple[Manifest, ...]) -> Manifest:
    return one(objs, "Deployment")


@pytest.mark.guarantee("k8s-egress-proxy-rendered")
def test_the_proxy_runs_pinned_in_gvisor_with_the_restricted_context_and_no_token() -> None:
    dep = deployment(render())
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert pod["runtimeClassName"] == "gvisor"
    assert c["image"] == f"ghcr.io/acme/stockade@{PROXY_DIGEST}"
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False
    assert not pod["hostNetwork"]
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["runAsNonRoot"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert c["command"] == ["stockade", "k8s", "egress-proxy"]
    assert all(m.get("readOnly") for m in c["volumeMounts"] if m["name"] != "tmp")
    assert c["resources"]["requests"] == c["resources"]["limits"]


@pytest.mark.guarantee("k8s-egress-proxy-rendered")
def test_the_proxy_holds_the_runs_allowlist_and_only_a_hash_of_its_token() -> None:
    objs = render()
    cm = one(objs, "ConfigMap")
    assert cm["metadata"]["namespace"] == "stockade-egress"
    assert cm["data"] == {"r1": "api.example.com\n*.github.com"}
    tokens = one(objs, "Secret", "egress-tokens")
    stored = base64.b64decode(tokens["data"]["r1"]).decode()
    assert stored == hashlib.sha256(TOKEN.encode()).hexdigest()
    assert TOKEN not in str(tokens)


@pytest.mark.guarantee("k8s-egress-proxy-rendered")
@pytest.mark.guarantee("k8s-default-deny-egress")
def test_only_workloads_reach_the_proxy_and_the_proxy_reaches_only_dns_and_web_ports() -> None:
    objs = render()
    np = one(objs, "NetworkPolicy", "egress-proxy-policy")
    assert np["spec"] == proxy_policy_spec(3128)
    (ingress,) = np["spec"]["ingress"]
    (peer,) = ingress["from"]
    assert peer["podSelector"] == {"matchLabels": {"stockade.dev/role": "workload"}}
    assert peer["namespaceSelector"] == {
        "matchLabels": {"app.kubernetes.io/managed-by": "stockade"}
    }
    assert ingress["ports"] == [{"protocol": "TCP", "port": 3128}]
    dns, web = np["spec"]["egress"]
    assert {p["port"] for p in dns["ports"]} == {53}
    assert dns["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    assert {p["port"] for p in web["ports"]} == {80, 443}
    assert all("10.0.0.0/8" in b["ipBlock"]["except"] for b in web["to"][:1])
    deny = one(objs, "NetworkPolicy", "egress-default-deny")
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    ns = one(objs, "Namespace", "egress-namespace")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    workload = one(objs, "NetworkPolicy", "egress")
    (rule,) = workload["spec"]["egress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 3128}]


@pytest.mark.guarantee("k8s-render-admitted")
@pytest.mark.guarantee("k8s-render-schema")
def test_every_proxy_object_is_admitted_and_schema_valid() -> None:
    objs = render()
    rules = rules_for(objs, REGISTRIES)
    assert check_rendered(objs, rules) == ()
    kinds = {o["kind"] for o in objs}
    assert (
        {"Deployment", "ConfigMap", "Service"}
        <= kinds
        <= ADMISSION_KINDS
        | {
            "RuntimeClass",
            "Namespace",
            "NetworkPolicy",
            "ResourceQuota",
            "LimitRange",
        }
    )
    for o in objs:
        validate_fast(o)


def test_a_widened_proxy_policy_is_a_self_check_problem() -> None:
    objs = copy.deepcopy(render())
    np = one(objs, "NetworkPolicy", "egress-proxy-policy")
    np["spec"]["egress"][1]["ports"].append({"protocol": "TCP", "port": 22})
    problems = check_rendered(objs, rules_for(objs, REGISTRIES))
    assert any("proxy's policy differs" in p for p in problems)


@pytest.mark.guarantee("k8s-refuse-unappliable")
def test_an_allowlist_run_without_a_proxy_image_is_refused() -> None:
    with pytest.raises(KubeError, match="egress proxy's image"):
        render(egress_proxy_image=None)


@pytest.mark.guarantee("k8s-refuse-unappliable")
@pytest.mark.parametrize(
    ("image", "message"),
    [
        ("ghcr.io/acme/stockade:v1", "not pinned by digest"),
        ("docker.io/evil/proxy@" + PROXY_DIGEST, "not in the policy's registries allowlist"),
        ("Not A Reference", "--egress-proxy-image"),
    ],
)
def test_a_proxy_image_unpinned_or_from_an_unlisted_registry_is_refused(
    image: str, message: str
) -> None:
    params = RunParams(
        run_id="e1", egress_proxy_ip=PROXY_IP, egress_token=TOKEN, egress_proxy_image=image
    )
    with pytest.raises(KubeError, match=message):
        render_server(example_policy(), "github", params)


def test_a_run_without_network_renders_no_proxy() -> None:
    objs = objs_of(spec())
    assert not [o for o in objs if o["kind"] in ("Deployment", "ConfigMap")]


# -- the merged entries across runs (FakeCluster) ------------------------------------------------


def _cluster() -> FakeCluster:
    c = FakeCluster(daemonsets={"kube-system": ("calico-node",)})
    c.put(runtime_class())
    return c


def _apply(cluster: FakeCluster, store: RecordStore, run_id: str, token: str) -> RollbackRecord:
    res = apply_run(
        cluster,
        render(run_id, egress_token=token),
        execute=True,
        store=store,
        clock=FakeClock(),
        server="tool",
        run_id=run_id,
    )
    assert res.record is not None
    return res.record


def _entries(cluster: FakeCluster, kind: str) -> set[str]:
    # pragma: allowlist nextline secret
    name = {"ConfigMap": "stockade-egress-allowlists", "Secret": "stockade-egress-tokens"}[kind]
    (obj,) = [o for r, o in cluster.objects.items() if r.name == name]
    return set(obj.get("data") or {})


@pytest.mark.guarantee("k8s-egress-proxy-rendered")
@pytest.mark.guarantee("k8s-rollback-recorded")
def test_runs_add_their_own_entries_and_a_rollback_removes_exactly_its_own(tmp_path: Path) -> None:
    cluster, store = _cluster(), RecordStore(tmp_path)
    _apply(cluster, store, "r1", "a" * 43)
    rec_1 = store.latest()
    _apply(cluster, store, "r2", "b" * 43)
    rec_2 = store.latest()
    assert _entries(cluster, "ConfigMap") == _entries(cluster, "Secret") == {"r1", "r2"}
    res = rollback_run(cluster, rec_1, execute=True)
    assert ("unmerge", "ConfigMap") in {(s.action, s.ref.kind) for s in res.steps}
    assert ("keep", "Deployment") in {(s.action, s.ref.kind) for s in res.steps}
    assert _entries(cluster, "ConfigMap") == _entries(cluster, "Secret") == {"r2"}
    dep = ref_of(deployment(render()))
    assert dep in cluster.objects  # the other run still uses the proxy
    rollback_run(cluster, rec_2, execute=True)
    assert _entries(cluster, "ConfigMap") == set()


@pytest.mark.guarantee("k8s-run-cleanup")
def test_the_only_allowlist_run_rolled_back_leaves_the_cluster_as_it_found_it(
    tmp_path: Path,
) -> None:
    cluster, store = _cluster(), RecordStore(tmp_path)
    before = set(cluster.objects)
    _apply(cluster, store, "r1", "a" * 43)
    assert any(r.kind == "Deployment" for r in cluster.objects)
    rollback_run(cluster, store.latest(), execute=True)
    assert set(cluster.objects) == before


def test_a_second_apply_of_a_run_id_with_another_token_is_refused(tmp_path: Path) -> None:
    cluster, store = _cluster(), RecordStore(tmp_path)
    _apply(cluster, store, "r1", "a" * 43)
    with pytest.raises(KubeError, match="a run id is used once"):
        _apply(cluster, store, "r1", "c" * 43)


def test_the_helper_image_constant_is_pinned() -> None:
    img = PinnedImage(registry="ghcr.io", repository="acme/stockade", digest=PROXY_DIGEST)
    assert str(img).endswith(PROXY_DIGEST)


@pytest.mark.guarantee("k8s-egress-proxy-rendered")
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(order=st.permutations(range(4)), undo=st.permutations(range(4)), stop=st.integers(0, 4))
def test_the_proxy_entries_are_exactly_the_live_runs_in_any_apply_and_rollback_order(
    tmp_path: Path, order: list[int], undo: list[int], stop: int
) -> None:
    cluster, store = _cluster(), RecordStore(tmp_path / uuid.uuid4().hex)
    records, live = {}, set()
    for i in order:
        records[f"p{i}"] = _apply(cluster, store, f"p{i}", str(i) * 43)
        live.add(f"p{i}")
        assert _entries(cluster, "ConfigMap") == _entries(cluster, "Secret") == live
    for i in undo[:stop]:
        rollback_run(cluster, records[f"p{i}"], execute=True)
        live.discard(f"p{i}")
        present = {r.name for r in cluster.objects}
        if "stockade-egress-allowlists" in present:
            assert _entries(cluster, "ConfigMap") == _entries(cluster, "Secret") == live
        else:
            assert not live
    if live:  # the proxy still serves the remaining runs
        assert ref_of(deployment(render())) in cluster.objects
