"""``stockade k8s``: render, export cluster policies, plan/apply and roll back (dry-run default)."""

from __future__ import annotations

import secrets as _secrets
from pathlib import Path

import click

from stockade.admission import StockadeRules
from stockade.kube import (
    ExportParams,
    RunParams,
    check_namespace,
    dump_all,
    gatekeeper,
    kyverno,
    render_server,
)
from stockade.policy import load_policy
from stockade.textsafe import safe_text

__all__ = ["k8s"]


@click.group()
def k8s() -> None:
    """Run tool servers as hardened gVisor Pods on Kubernetes."""


def _run_id(value: str | None) -> str:
    return value if value is not None else _secrets.token_hex(8)


@k8s.command("render")
@click.option("--policy", "policy_file", required=True, type=click.Path(dir_okay=False))
@click.option("--server", required=True, help="the policy's server entry to render")
@click.option("--run-id", default=None, help="lowercase id (default: a new random one)")
@click.option("--namespace", default=None, help="default: stockade-<server>")
@click.option("--digest", default=None, help="sha256:... when the policy's image has only a tag")
@click.option("--egress-proxy-ip", default=None, help="ClusterIP of the egress proxy Service")
@click.option("--egress-namespace", default="stockade-egress", show_default=True)
def render_cmd(  # noqa: PLR0917 - click passes every option positionally by name
    policy_file: str,
    server: str,
    run_id: str | None,
    namespace: str | None,
    digest: str | None,
    egress_proxy_ip: str | None,
    egress_namespace: str,
) -> None:
    """Print every object of one run as multi-document YAML (Secret values redacted)."""
    policy = load_policy(Path(policy_file))
    params = RunParams(
        run_id=_run_id(run_id),
        namespace=namespace,
        digest=digest,
        egress_proxy_ip=egress_proxy_ip,
        egress_namespace=egress_namespace,
        egress_token=_secrets.token_urlsafe(32),
    )
    objs = render_server(policy, server, params)
    click.echo(safe_text(dump_all(objs)), nl=False)


@k8s.command("policies")
@click.option("--policy", "policy_file", type=click.Path(dir_okay=False), help="registries from")
@click.option("--registry", "registries", multiple=True, help="HOST/NAMESPACE/* (repeatable)")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["gatekeeper", "kyverno"]),
    default="gatekeeper",
    show_default=True,
)
@click.option("--egress-namespace", default="stockade-egress", show_default=True)
def policies_cmd(
    policy_file: str | None, registries: tuple[str, ...], fmt: str, egress_namespace: str
) -> None:
    """Print stockade's rules as cluster policies (an empty registry list denies every image)."""
    regs = tuple(registries)
    if policy_file is not None:
        regs = load_policy(Path(policy_file)).registries + regs
    StockadeRules.of(regs)  # refuses an invalid pattern (usage error)
    params = ExportParams(registries=regs, proxy_namespaces=(check_namespace(egress_namespace),))
    objs = gatekeeper(params) if fmt == "gatekeeper" else kyverno(params)
    click.echo(safe_text(dump_all(objs)), nl=False)
