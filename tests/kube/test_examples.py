"""The committed examples under examples/k8s are current and behave as documented."""

from __future__ import annotations

import pytest
import yaml

from stockade.admission import Level, Verdict, evaluate, load_documents
from stockade.kube import (
    ADMISSION_KINDS,
    ExportParams,
    RunParams,
    check_rendered,
    gatekeeper,
    kyverno,
    redact,
    render_server,
    rules_for,
)

from ._helpers import REPO, example_policy

EXAMPLES = REPO / "examples" / "k8s"
EXAMPLE_PROXY_IMAGE = "ghcr.io/acme/stockade@sha256:" + "7e" * 32


@pytest.mark.parametrize(("name", "export"), [("gatekeeper", gatekeeper), ("kyverno", kyverno)])
def test_the_committed_cluster_policies_equal_the_export(name: str, export: object) -> None:
    committed = list(
        yaml.safe_load_all((EXAMPLES / "cluster-policies" / f"{name}.yaml").read_text())
    )
    params = ExportParams(registries=example_policy().registries)
    assert committed == list(export(params))  # type: ignore[operator]


def test_the_committed_render_equals_a_fresh_render_but_for_the_token() -> None:
    text = (EXAMPLES / "github-run.yaml").read_text()
    committed = [d.obj for d in load_documents(text, "github-run.yaml")]
    fresh = render_server(
        example_policy(),
        "github",
        RunParams(
            run_id="example",
            egress_proxy_ip="10.96.0.50",
            egress_token="x" * 43,
            egress_proxy_image=EXAMPLE_PROXY_IMAGE,
        ),
    )
    assert committed == [redact(o) for o in fresh]
    rules = rules_for(committed, example_policy().registries)
    assert check_rendered(committed, rules) == ()
    for o in committed:
        if o["kind"] in ADMISSION_KINDS:
            assert evaluate(o, Level.STOCKADE, rules, only=None).verdict == Verdict.ALLOW
