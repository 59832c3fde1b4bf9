"""From a policy server entry to a verified render (the glue the CLI and the applier share)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import ValidationError

from stockade.errors import PolicyError, StockadeError
from stockade.models import PinnedImage
from stockade.policy import Policy, image_repository, registry_matches
from stockade.sandbox import Overrides, build_spec, policy_limits
from stockade.supplychain import parse_reference

from ._check import verify_rendered
from ._errors import KubeError
from ._names import namespace_for
from ._render import Manifest, RenderInput, render

__all__ = ["RunParams", "render_server"]


@dataclass(frozen=True)
class RunParams:
    """Per-run values the policy does not hold."""

    run_id: str
    namespace: str | None = None
    digest: str | None = None
    egress_proxy_ip: str | None = None
    egress_namespace: str = "stockade-egress"
    egress_token: str | None = None
    #: stockade's own image for the egress proxy (allowlist profiles), pinned by digest.
    egress_proxy_image: str | None = None
    secret_values: Mapping[str, bytes] | None = None


def _pinned(image: str, digest: str | None) -> PinnedImage:
    ref = parse_reference(image)
    if digest is not None:
        if ref.digest is not None and ref.digest != digest:
            raise KubeError(
                f"--digest {digest} differs from the digest pinned in the policy ({ref.digest})",
                "drop --digest, or correct the policy",
            )
        ref = ref.model_copy(update={"digest": digest})
        ref = type(ref).model_validate(ref.model_dump())  # re-validate the digest
    return ref.pinned()


def _proxy_image(policy: Policy, params: RunParams) -> PinnedImage | None:
    """The egress proxy's image: ``--egress-proxy-image`` when given, else the policy's
    ``kubernetes.egress_proxy_image``; either way pinned by digest and from a listed registry."""
    text, source = params.egress_proxy_image, "--egress-proxy-image"
    if text is None:
        section = policy.doc.kubernetes
        text = None if section is None else section.egress_proxy_image
        source = "kubernetes.egress_proxy_image"
    if text is None:
        return None
    try:
        ref = parse_reference(text)
    except StockadeError as e:
        raise KubeError(f"{source}: {e.what}", e.fix) from None
    if ref.digest is None:
        raise KubeError(
            f"{source} {text[:200]!r} is not pinned by digest",
            "pass REGISTRY/REPO@sha256:... (a tag can be moved)",
        )
    repo = image_repository(text)[0]
    if not any(registry_matches(p, repo) for p in policy.registries):
        raise KubeError(
            f"{source} {text[:200]!r} is not in the policy's registries allowlist",
            f"use stockade's image from a listed registry, or add a pattern covering {repo}",
        )
    return ref.pinned()


def render_server(policy: Policy, server: str, params: RunParams) -> tuple[Manifest, ...]:
    """Render and self-check every object of one run of ``server``; refuse on any problem."""
    if not policy.has_server(server):
        raise PolicyError(
            f"the policy has no server {server!r}", "pass one of: stockade policy show"
        )
    entry = policy.server(server)
    if entry.image is None:
        raise KubeError(
            f"server {server!r} runs a host command; a Pod runs an image",
            "give the server an image: (pinned by digest) to run it on Kubernetes",
        )
    try:
        image = _pinned(entry.image, params.digest)
    except ValidationError as e:
        raise KubeError(
            f"--digest is invalid: {e.errors()[0]['msg']}", "pass sha256:<64 hex>"
        ) from None
    proxy_image = _proxy_image(policy, params)
    spec = build_spec((str(image),), policy_limits(policy, server), Overrides())
    values = params.secret_values
    if values is None:
        values = dict.fromkeys(spec.secrets, b"")
    try:
        inp = RenderInput(
            spec=spec,
            image=image,
            server=server,
            run_id=params.run_id,
            namespace=params.namespace or namespace_for(server),
            egress_namespace=params.egress_namespace,
            egress_proxy_ip=params.egress_proxy_ip,
            egress_token=params.egress_token,
            egress_proxy_image=proxy_image,
            secret_values=values,
            image_entrypoint=True,
        )
    except ValidationError as e:
        raise KubeError(
            f"cannot render: {e.errors()[0]['msg']}", "check --run-id and --namespace"
        ) from None
    objs = render(inp)
    verify_rendered(objs, policy.registries)
    return objs
