"""The local gateway's supply-chain gate: each image server verified before anything is served.

The same steps as ``stockade run --image`` (:func:`stockade.supplychain.prepare_image`): the
policy's registry allowlist, the digest rule, the tag resolved once, the server's ``verify:``
signature rules, the pull by digest and the unpack. It runs for every image server, lazy ones
too, when the gateway starts: a refusal is recorded as a refused run and the gateway does not
start (fail closed, nothing half served), and the digest verified at start is the one every
later launch runs (a tag moving while the gateway serves changes nothing).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from stockade import paths
from stockade.errors import StockadeError
from stockade.gateway._config import ServerImage, ServerSpec
from stockade.gateway._fromdoc import ImageVerifier
from stockade.gateway._sandboxed import sandbox_spec_for
from stockade.models import Clock
from stockade.textsafe import safe_text

from ._k8s_gateway import _record_refusal

__all__ = ["image_verifier"]


def image_verifier(
    *, plain_http: tuple[str, ...], store_path: Path | None, audit_log: Path | None, clock: Clock
) -> ImageVerifier:
    """``(policy, server) -> (image, argv)``; a refusal is recorded (run store, audit), raised."""

    def verify(policy: Any, server: str) -> tuple[ServerImage, tuple[str, ...]]:
        entry = policy.server(server)
        try:
            image, argv = _prepare(policy, server, plain_http, clock)
            # the spec the launch will build (the image's User/Env filters) must hold now
            probe = ServerSpec(name=server, command=argv, env=dict(entry.env), image=image)
            sandbox_spec_for(probe)
        except StockadeError as e:
            run_id = _record_refusal(e, policy, server, store_path, audit_log, backend="gvisor")
            click.echo(
                safe_text(
                    f"stockade: server {server}: image {entry.image} refused (run {run_id}): "
                    f"{e.what}",
                    single_line=True,
                ),
                err=True,
            )
            raise
        v = dict(image.evidence)["verification"]
        click.echo(
            safe_text(
                f"stockade: server {server}: verified {image.reference} (rule {v['rule']}, "
                f"registry rule {v['registry_rule']})",
                single_line=True,
            ),
            err=True,
        )
        return image, argv

    return verify


def _prepare(
    policy: Any, server: str, plain_http: tuple[str, ...], clock: Clock
) -> tuple[ServerImage, tuple[str, ...]]:
    from stockade.supplychain import RegistryClient, image_evidence, image_gate, prepare_image

    entry = policy.server(server)
    images = paths.home() / "images"
    gate = image_gate(policy, server)
    with RegistryClient(plain_http=plain_http) as client:
        prepared = prepare_image(
            client,
            entry.image,
            gate,
            store_root=images / "oci",
            cache=images / "rootfs",
            clock=clock,
            command=tuple(entry.command or ()),
        )
    image = ServerImage(
        requested=entry.image,
        reference=prepared.verified.reference,
        digest=prepared.verified.pinned.digest,
        rootfs=prepared.rootfs,
        workdir=prepared.workdir,
        env=prepared.env,
        user=prepared.user,
        evidence=image_evidence(prepared, entry.image, clock.now().isoformat()),
    )
    return image, prepared.argv
