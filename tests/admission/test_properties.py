"""Properties of the level algebra and of fail-closed evaluation, checked with Hypothesis."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stockade.admission import Level, ManifestError, Verdict, check_ids, evaluate, load_documents
from stockade.errors import InputError

from ._helpers import DIGEST, RULES, restricted_pod, setp, stockade_pod

SC = "securityContext"
C = ("spec.initContainers[0]", "spec.containers[0]")
LEVELS = (Level.BASELINE, Level.RESTRICTED, Level.STOCKADE)


def minimal_pod() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "m"},
        "spec": {
            "initContainers": [{"name": "i", "image": "busybox"}],
            "containers": [{"name": "c", "image": "nginx:1"}],
        },
    }


# Mutations that are a violation at (at least) the given level whatever else the pod says.
BAD: list[tuple[Level, str, Any]] = [
    *[(Level.BASELINE, f"{c}.{SC}.privileged", True) for c in C],
    *[(Level.BASELINE, f"{c}.{SC}.capabilities.add", ["SYS_ADMIN"]) for c in C],
    *[(Level.BASELINE, f"{c}.{SC}.seccompProfile", {"type": "Unconfined"}) for c in C],
    *[(Level.BASELINE, f"{c}.{SC}.appArmorProfile", {"type": "Unconfined"}) for c in C],
    *[(Level.BASELINE, f"{c}.{SC}.seLinuxOptions", {"user": "u"}) for c in C],
    *[(Level.BASELINE, f"{c}.{SC}.windowsOptions", {"hostProcess": True}) for c in C],
    *[(Level.BASELINE, f"{c}.ports", [{"containerPort": 1, "hostPort": 1}]) for c in C],
    *[(Level.BASELINE, f"{c}.livenessProbe", {"tcpSocket": {"port": 1, "host": "h"}}) for c in C],
    (Level.BASELINE, "spec.hostNetwork", True),
    (Level.BASELINE, "spec.hostPID", True),
    (Level.BASELINE, "spec.hostIPC", True),
    (Level.BASELINE, "spec.volumes", [{"name": "h", "hostPath": {"path": "/"}}]),
    (Level.BASELINE, f"spec.{SC}.sysctls", [{"name": "kernel.msgmax", "value": "1"}]),
    (Level.BASELINE, f"spec.{SC}.seccompProfile", {"type": "Unconfined"}),
    (Level.RESTRICTED, "spec.volumes", [{"name": "n", "nfs": {"server": "s", "path": "/"}}]),
    *[(Level.RESTRICTED, f"{c}.{SC}.procMount", "Unmasked") for c in C],
    *[(Level.STOCKADE, f"{c}.image", "ghcr.io/acme/tool:latest") for c in C],
    *[(Level.STOCKADE, f"{c}.image", f"quay.io/x/y@{DIGEST}") for c in C],
    *[(Level.STOCKADE, f"{c}.{SC}.readOnlyRootFilesystem", False) for c in C],
    *[(Level.STOCKADE, f"{c}.resources", {}) for c in C],
    *[(Level.STOCKADE, f"{c}.envFrom", [{"secretRef": {"name": "nope"}}]) for c in C],
    (Level.STOCKADE, "spec.runtimeClassName", "runc"),
    (Level.STOCKADE, "spec.automountServiceAccountToken", True),
    (Level.STOCKADE, "spec.activeDeadlineSeconds", 0),
]

# Context changes that toggle exemptions or fix things: anything may happen to the verdict.
OTHER: list[tuple[str, Any]] = [
    ("spec.os", {"name": "windows"}),
    ("spec.os", {"name": "linux"}),
    ("spec.hostUsers", False),
    ("spec.hostUsers", True),
    (f"spec.{SC}.runAsUser", 0),
    (f"spec.{SC}.runAsNonRoot", False),
    (f"spec.{SC}.runAsNonRoot", True),
    (f"spec.{SC}.seccompProfile", {"type": "RuntimeDefault"}),
    (f"spec.{SC}.appArmorProfile", {"type": "RuntimeDefault"}),
    (f"spec.{SC}", {}),
    *[(f"{c}.{SC}", {}) for c in C],
    *[(f"{c}.{SC}.capabilities", {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}) for c in C],
    *[(f"{c}.{SC}.allowPrivilegeEscalation", v) for c in C for v in (True, False)],
    *[(f"{c}.{SC}.runAsUser", v) for c in C for v in (0, 1000)],
    *[(f"{c}.{SC}.seccompProfile", {"type": "Localhost"}) for c in C],
    ("spec.volumes", [{"name": "e", "emptyDir": {}}]),
    ("metadata.annotations", {"container.apparmor.security.beta.kubernetes.io/c": "unconfined"}),
]

bases = st.sampled_from([restricted_pod, stockade_pod, minimal_pod])
changes = st.lists(
    st.one_of(st.sampled_from([(p, v) for _, p, v in BAD]), st.sampled_from(OTHER)), max_size=8
)


def build(base: Any, edits: list[tuple[str, Any]]) -> dict[str, Any]:
    pod: dict[str, Any] = base()
    for path, value in edits:
        pod = setp(pod, path, value)
    return pod


def denied(pod: dict[str, Any], level: Level) -> bool:
    return evaluate(pod, level, RULES).verdict is Verdict.DENY


@pytest.mark.guarantee("admit-pss-restricted")
@given(bases, changes)
def test_raising_the_level_never_turns_a_deny_into_an_allow(
    base: Any, edits: list[tuple[str, Any]]
) -> None:
    pod = build(base, edits)
    verdicts = [denied(pod, level) for level in LEVELS]
    assert verdicts == sorted(verdicts), verdicts  # False... then True...
    # Stronger: every field a lower level objects to, a higher level objects to as well.
    paths = [{v.path for v in evaluate(pod, level, RULES).violations} for level in LEVELS]
    assert paths[0] <= paths[1] <= paths[2]


@pytest.mark.guarantee("admit-pss-baseline")
@given(bases, changes, st.sampled_from(BAD), st.sampled_from(LEVELS))
def test_adding_a_violation_never_turns_a_deny_into_an_allow(
    base: Any, edits: list[tuple[str, Any]], bad: tuple[Level, str, Any], level: Level
) -> None:
    pod = build(base, edits)
    before = denied(pod, level)
    bad_level, path, value = bad
    after = denied(setp(pod, path, value), level)
    if before:
        assert after
    if LEVELS.index(level) >= LEVELS.index(bad_level):
        assert after


@given(bases, changes, st.sampled_from(LEVELS))
def test_evaluation_is_deterministic_and_leaves_the_manifest_untouched(
    base: Any, edits: list[tuple[str, Any]], level: Level
) -> None:
    pod = build(base, edits)
    snapshot = copy.deepcopy(pod)
    first = evaluate(pod, level, RULES)
    assert evaluate(pod, level, RULES) == first
    assert pod == snapshot


@given(bases, changes)
def test_only_with_every_check_id_equals_the_union_of_single_checks(
    base: Any, edits: list[tuple[str, Any]]
) -> None:
    pod = build(base, edits)
    everything = evaluate(pod, Level.BASELINE, RULES, set(check_ids())).violations
    singles = [
        v for cid in check_ids() for v in evaluate(pod, Level.BASELINE, RULES, {cid}).violations
    ]
    assert set(everything) == set(singles)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)
FIELDS = (
    [p for _, p, _ in BAD]
    + [p for p, _ in OTHER]
    + [
        "spec",
        "spec.containers",
        "spec.containers[0]",
        "spec.volumes",
        f"spec.{SC}.sysctls",
        "metadata",
        "spec.os",
    ]
)


@pytest.mark.guarantee("admit-fail-closed-input")
@given(
    bases,
    st.lists(st.tuples(st.sampled_from(FIELDS), json_values), min_size=1, max_size=4),
    st.sampled_from(LEVELS),
)
def test_any_value_anywhere_yields_a_verdict_or_an_input_error_never_a_crash(
    base: Any, edits: list[tuple[str, Any]], level: Level
) -> None:
    pod = base()
    for path, value in edits:
        try:
            pod = setp(pod, path, value)
        except (TypeError, IndexError, AttributeError, KeyError):
            continue  # the path no longer exists in this shape; skip the edit
    try:
        result = evaluate(pod, level, RULES)
    except ManifestError:
        return
    assert result.verdict in {Verdict.ALLOW, Verdict.DENY}


@pytest.mark.guarantee("admit-fail-closed-input")
@given(st.text(max_size=300))
def test_any_text_either_loads_or_is_an_input_error(text: str) -> None:
    for name in ("x.yaml", "x.json"):
        try:
            docs = load_documents(text, name)
        except InputError:
            continue
        assert all(isinstance(d.obj, dict) for d in docs)
