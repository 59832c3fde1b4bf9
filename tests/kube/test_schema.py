"""Rendered manifests against the Kubernetes 1.37 OpenAPI schemas (kubernetes-validate)."""

from __future__ import annotations

import copy

import pytest

from stockade.kube import Manifest, RunParams, redact, render_server

from ._helpers import PROXY_DIGEST, PROXY_IP, TOKEN, allowlist, example_policy, objs_of, one, spec

kv = pytest.importorskip(
    "kubernetes_validate", reason="kubernetes-validate is not installed (pip install -e '.[dev]')"
)
K8S_VERSION = "1.37.0"


def validate(obj: Manifest) -> None:
    kv.validate(obj, K8S_VERSION, strict=True)


@pytest.mark.guarantee("k8s-render-schema")
@pytest.mark.parametrize(
    "kw",
    [{}, {"network": allowlist("a.example.com", "*.b.example.com")}, {"secrets": ("A", "B")}],
    ids=["none", "allowlist", "secrets"],
)
def test_every_rendered_object_validates_strictly(kw: dict[str, object]) -> None:
    objs = objs_of(spec(**kw))  # type: ignore[arg-type]
    for o in objs:
        validate(o)
        validate(redact(o))


@pytest.mark.guarantee("k8s-render-schema")
@pytest.mark.parametrize("server", ["docs-search", "github"])
def test_the_example_policy_renders_schema_valid_manifests(server: str) -> None:
    params = RunParams(
        run_id="e1",
        egress_proxy_ip=PROXY_IP,
        egress_token=TOKEN,
        egress_proxy_image=f"ghcr.io/acme/stockade@{PROXY_DIGEST}",
    )
    for o in render_server(example_policy(), server, params):
        validate(o)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "bogusField"), 1),
        (("spec", "activeDeadlineSeconds"), "60"),
        (("spec", "containers", 0, "securityContext", "runAsUser"), "65532"),
    ],
)
def test_the_schema_check_itself_rejects_unknown_and_mistyped_fields(
    path: tuple[str | int, ...], value: object
) -> None:
    pod = copy.deepcopy(one(objs_of(), "Pod"))
    node = pod
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value  # type: ignore[index]
    with pytest.raises(kv.ValidationError):
        validate(pod)
