"""Plan, preflight, apply and rollback decisions against the in-memory FakeCluster."""

from __future__ import annotations

import copy
import os
import stat
from pathlib import Path

import pytest

from stockade.kube import (
    Action,
    ApplyResult,
    KubeError,
    Manifest,
    ObjRef,
    PreflightError,
    RecordStore,
    apply_run,
    diff_text,
    make_plan,
    ref_of,
    rollback_run,
    runtime_class,
)
from stockade.testing import FakeClock, FakeCluster

from ._helpers import TOKEN, allowlist, objs_of, one, spec

CALICO = {"kube-system": ("calico-node", "kube-proxy")}


def healthy_cluster() -> FakeCluster:
    c = FakeCluster(daemonsets=dict(CALICO))
    c.put(runtime_class())
    return c


def desired(run_id: str = "r1", **kw: object) -> tuple[Manifest, ...]:
    return objs_of(spec(network=allowlist(), secrets=("API_TOKEN",)), run_id=run_id, **kw)


def do_apply(
    cluster: FakeCluster,
    store: RecordStore,
    objs: tuple[Manifest, ...],
    *,
    execute: bool,
    assume: bool = False,
) -> ApplyResult:
    run_id = one(objs, "Pod")["metadata"]["labels"]["stockade.dev/run-id"]
    return apply_run(
        cluster,
        objs,
        execute=execute,
        store=store,
        clock=FakeClock(),
        server="tool",
        run_id=run_id,
        unsafe_assume_networkpolicy=assume,
    )


@pytest.fixture
def store(tmp_path: Path) -> RecordStore:
    return RecordStore(tmp_path / "rollback")


@pytest.mark.guarantee("k8s-apply-dry-run-default")
def test_a_dry_run_writes_nothing_and_records_nothing(store: RecordStore) -> None:
    cluster = healthy_cluster()
    before = copy.deepcopy(cluster.objects)
    res = do_apply(cluster, store, desired(), execute=False)
    assert cluster.objects == before
    assert [op for op, _ in cluster.calls] == []
    assert store.ids() == ()
    assert res.applied is False
    assert {c.action for c in res.plan.changes} == {Action.CREATE, Action.PREREQUISITE}


@pytest.mark.guarantee("k8s-apply-dry-run-default")
def test_a_dry_run_reports_the_refusals_an_apply_would_meet(store: RecordStore) -> None:
    cluster = FakeCluster()  # no RuntimeClass, no network plugin
    res = do_apply(cluster, store, desired(), execute=False)
    text = " ".join(res.refusals)
    assert "RuntimeClass 'gvisor'" in text
    assert "NetworkPolicy" in text
    assert cluster.calls == []


def test_an_executed_apply_creates_everything_but_the_prerequisite(store: RecordStore) -> None:
    cluster = healthy_cluster()
    objs = desired()
    do_apply(cluster, store, objs, execute=True)
    for o in objs:
        assert ref_of(o) in cluster.objects
    created = [ref for op, ref in cluster.calls if op == "create"]
    assert "RuntimeClass" not in [r.kind for r in created]
    assert created[-1].kind == "Pod"  # the workload goes last, after its policies


@pytest.mark.guarantee("k8s-preflight-refuse")
@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda c: c.objects.clear(), "no RuntimeClass 'gvisor'"),
        (lambda c: c.put(runtime_class() | {"handler": "runc"}), "handler 'runc'"),
        (lambda c: c.daemonsets.clear(), "cannot tell whether the network plugin"),
        (lambda c: c.daemonsets.update({"kube-system": ("kube-flannel-ds",)}), "flannel"),
    ],
    ids=["no-runtimeclass", "wrong-handler", "unknown-cni", "flannel"],
)
def test_apply_refuses_before_any_write_when_a_control_is_missing(
    store: RecordStore, setup: object, message: str
) -> None:
    cluster = healthy_cluster()
    setup(cluster)  # type: ignore[operator]
    before = copy.deepcopy(cluster.objects)
    with pytest.raises(PreflightError, match=message):
        do_apply(cluster, store, desired(), execute=True)
    assert cluster.objects == before
    assert [op for op, _ in cluster.calls if op != "get"] == []
    assert store.ids() == ()


@pytest.mark.guarantee("k8s-preflight-refuse")
def test_an_unknown_network_plugin_is_accepted_only_with_the_unsafe_flag(
    store: RecordStore,
) -> None:
    cluster = healthy_cluster()
    cluster.daemonsets.clear()
    do_apply(cluster, store, desired(), execute=True, assume=True)
    assert any(r.kind == "Pod" for r in cluster.objects)
    flannel = healthy_cluster()
    flannel.daemonsets = {"kube-system": ("kube-flannel-ds",)}
    with pytest.raises(PreflightError, match="flannel"):
        do_apply(flannel, store, desired("r2"), execute=True, assume=True)


class _StripsLabels(FakeCluster):
    """A cluster whose mutating webhook drops the namespace's Pod Security labels."""

    def create(self, obj: Manifest) -> None:
        if obj["kind"] == "Namespace":
            obj = copy.deepcopy(obj)
            obj["metadata"]["labels"] = {}
        super().create(obj)


@pytest.mark.guarantee("k8s-preflight-refuse")
def test_the_pod_is_not_created_when_the_live_namespace_does_not_enforce_restricted(
    store: RecordStore,
) -> None:
    cluster = _StripsLabels(daemonsets=dict(CALICO))
    cluster.put(runtime_class())
    with pytest.raises(PreflightError, match="does not enforce Pod Security restricted"):
        do_apply(cluster, store, desired(), execute=True)
    assert not any(r.kind == "Pod" for r in cluster.objects)
    assert store.ids()  # the namespace-level writes are recorded for rollback


@pytest.mark.guarantee("k8s-preflight-refuse")
def test_a_dry_run_judges_an_existing_namespace_by_what_the_plan_will_write(
    store: RecordStore,
) -> None:
    cluster = healthy_cluster()
    ns = copy.deepcopy(one(desired(), "Namespace", "namespace"))
    ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] = "privileged"
    cluster.put(ns)
    res = do_apply(cluster, store, desired(), execute=False)
    assert res.refusals == ()
    change = next(c for c in res.plan.changes if c.ref == ref_of(ns))
    assert change.action == Action.UPDATE
    assert "-    pod-security.kubernetes.io/enforce: privileged" in diff_text(change)
    assert "+    pod-security.kubernetes.io/enforce: restricted" in diff_text(change)


def test_reapplying_the_same_run_changes_nothing(store: RecordStore) -> None:
    cluster = healthy_cluster()
    objs = desired()
    do_apply(cluster, store, objs, execute=True)
    res = do_apply(cluster, store, objs, execute=False)
    assert {c.action for c in res.plan.changes} <= {Action.UNCHANGED, Action.PREREQUISITE}


def test_an_existing_secret_or_pod_of_the_same_run_id_that_differs_is_refused() -> None:
    objs = desired()
    secret = one(objs, "Secret", "egress-token")
    other = copy.deepcopy(secret)
    other["data"]["token"] = "b3RoZXI="  # noqa: S105 - a test value
    with pytest.raises(KubeError, match="a run id is used once"):
        make_plan(objs, {ref_of(secret): other})


@pytest.mark.guarantee("k8s-secrets-granted-only")
def test_the_diff_never_shows_secret_values() -> None:
    objs = desired()
    plan = make_plan(objs, {})
    text = "".join(diff_text(c) for c in plan.changes)
    assert "PHJlZGFjdGVkPg==" in text
    import base64

    assert base64.b64encode(TOKEN.encode()).decode() not in text


def test_server_added_fields_are_not_a_change() -> None:
    objs = desired()
    ns = copy.deepcopy(one(objs, "Namespace", "namespace"))
    ns["metadata"]["labels"]["kubernetes.io/metadata.name"] = ns["metadata"]["name"]
    ns["metadata"]["uid"] = "x"
    ns["status"] = {"phase": "Active"}
    plan = make_plan(objs, {ref_of(ns): ns})
    assert next(c for c in plan.changes if c.ref.kind == "Namespace").action == Action.UNCHANGED


# -- rollback ------------------------------------------------------------------------------------


@pytest.mark.guarantee("k8s-rollback-recorded")
def test_rollback_deletes_what_the_apply_created_and_restores_what_it_changed(
    store: RecordStore,
) -> None:
    cluster = healthy_cluster()
    quota = copy.deepcopy(one(desired(), "ResourceQuota"))
    quota["spec"]["hard"]["pods"] = "99"
    quota["metadata"]["labels"]["keep"] = "me"
    cluster.put(quota)
    before = copy.deepcopy(cluster.objects)
    do_apply(cluster, store, desired(), execute=True)
    assert cluster.objects[ref_of(quota)]["spec"]["hard"]["pods"] == "10"
    record = store.latest()
    # the record holds the previous quota and no Secret values
    prev = {c.kind: c.previous for c in record.changes}
    assert prev["ResourceQuota"] is not None
    assert prev["Secret"] is None
    dry = rollback_run(cluster, record, execute=False)
    assert dry.applied is False
    assert ref_of(one(desired(), "Pod")) in cluster.objects  # a dry run changes nothing
    assert dry.steps[0].ref.kind == "Pod"  # undo in reverse order: the workload first
    rollback_run(cluster, record, execute=True)
    assert set(cluster.objects) == set(before)
    restored = cluster.objects[ref_of(quota)]
    assert restored["spec"]["hard"]["pods"] == "99"
    assert restored["metadata"]["labels"]["keep"] == "me"


@pytest.mark.guarantee("k8s-rollback-recorded")
def test_the_record_is_written_before_the_first_write_so_a_failed_apply_can_be_undone(
    store: RecordStore,
) -> None:
    cluster = healthy_cluster()
    objs = desired()
    cluster.fail_on.add(ref_of(one(objs, "Secret", "secrets")))
    with pytest.raises(KubeError, match="injected") as info:
        do_apply(cluster, store, objs, execute=True)
    record = store.latest()
    assert f"stockade k8s rollback {record.id} --apply" in info.value.fix
    assert any(r.kind == "Namespace" for r in cluster.objects)
    rollback_run(cluster, record, execute=True)  # absent objects are skipped, others deleted
    assert set(cluster.objects) == {ref_of(runtime_class())}


def test_records_are_private_files(store: RecordStore) -> None:
    do_apply(healthy_cluster(), store, desired(), execute=True)
    (path,) = store.directory.glob("*.json")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store.directory).st_mode) == 0o700


@pytest.mark.parametrize("bad", ["../x", ".hidden", "a/b"])
def test_record_ids_cannot_escape_the_directory(store: RecordStore, bad: str) -> None:
    with pytest.raises(KubeError, match="not valid"):
        store.load(bad)


def test_a_corrupt_record_is_refused(store: RecordStore) -> None:
    do_apply(healthy_cluster(), store, desired(), execute=True)
    (path,) = store.directory.glob("*.json")
    path.write_text('{"id": "x"}')
    with pytest.raises(KubeError, match="corrupt"):
        store.latest()


def test_no_record_means_nothing_to_roll_back(store: RecordStore) -> None:
    with pytest.raises(KubeError, match="no rollback record"):
        store.latest()


def test_obj_ref_prints_kind_namespace_and_name() -> None:
    assert str(ObjRef("v1", "Pod", "ns", "p")) == "Pod ns/p"
    assert str(ObjRef("node.k8s.io/v1", "RuntimeClass", "", "gvisor")) == "RuntimeClass gvisor"


def test_connecting_without_a_usable_kubeconfig_is_refused(tmp_path: Path) -> None:
    from stockade.kube._client import connect

    with pytest.raises(KubeError, match="cannot load a kubeconfig"):
        connect(str(tmp_path / "missing"), None)
    bad = tmp_path / "config"
    bad.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\n")
    with pytest.raises(KubeError, match="cannot load a kubeconfig"):
        connect(str(bad), "nope")


def test_executed_applies_refusals_and_rollbacks_are_audited(store: RecordStore) -> None:
    from stockade.testing import MemoryAuditSink

    sink = MemoryAuditSink()
    cluster = healthy_cluster()
    objs = desired()
    apply_run(
        cluster,
        objs,
        execute=False,
        store=store,
        clock=FakeClock(),
        server="tool",
        run_id="r1",
        audit=sink,
    )
    assert sink.events == []  # a dry run changes nothing and is not audited
    apply_run(
        cluster,
        objs,
        execute=True,
        store=store,
        clock=FakeClock(),
        server="tool",
        run_id="r1",
        audit=sink,
    )
    rollback_run(cluster, store.latest(), execute=True, audit=sink)
    bare = FakeCluster()
    with pytest.raises(PreflightError):
        apply_run(
            bare,
            desired("r2"),
            execute=True,
            store=store,
            clock=FakeClock(),
            server="tool",
            run_id="r2",
            audit=sink,
        )
    types = [e.type for e in sink.events]
    assert types == ["k8s.apply", "k8s.rollback", "k8s.apply.refused"]
    assert sink.events[0].run_id == "r1"
    assert "create Pod stockade-tool/stockade-r1" in sink.events[0].data["changes"]


@pytest.mark.guarantee("k8s-rollback-recorded")
def test_rolling_back_one_run_keeps_the_shared_objects_another_run_still_uses(
    store: RecordStore,
) -> None:
    cluster = healthy_cluster()
    first, second = desired("r1"), desired("r2")
    do_apply(cluster, store, first, execute=True)
    record_1 = store.latest()
    do_apply(cluster, store, second, execute=True)
    res = rollback_run(cluster, record_1, execute=True)
    kept = {s.ref.kind for s in res.steps if s.action == "keep"}
    assert {"Namespace", "ResourceQuota", "LimitRange"} <= kept
    assert ref_of(one(first, "Pod")) not in cluster.objects
    assert ref_of(one(first, "Secret", "egress-token")) not in cluster.objects
    for o in second:  # the other run is untouched
        assert ref_of(o) in cluster.objects
    # The second run's apply created none of the shared objects, so its rollback removes only
    # its own; the kept shared objects stay (documented: delete the namespace by hand).
    rollback_run(cluster, store.latest(), execute=True)
    assert not any(r.kind == "Pod" for r in cluster.objects)
    secrets = [o for r, o in cluster.objects.items() if r.kind == "Secret"]
    assert [s["metadata"]["name"] for s in secrets] == ["stockade-egress-tokens"]
    assert secrets[0]["data"] == {}  # neither run's token hash is left
    assert any(r.kind == "Namespace" for r in cluster.objects)
