"""From a policy and an image reference to a verified, unpacked rootfs ready to run (fail closed).

``image_gate`` maps the policy's ``registries`` and ``signatures`` section onto the supply chain's
own types; ``prepare_image`` then runs every step in order — parse, require a digest when the
policy says so, allowlist, resolve the tag *once*, verify signatures, pull by digest (each blob
re-hashed), unpack to a cache keyed by manifest digest — and returns the evidence to record.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stockade.models import Clock, Frozen
from stockade.policy import Policy

from ._allowlist import RegistryAllowlist
from ._attest import SbomEvidence
from ._bases import ApprovedBase
from ._errors import RegistryError, SignatureVerificationError, TrustMaterialError
from ._layout import OciLayoutStore
from ._manifest import parse_manifest
from ._policy import IdentityMatcher, SignatureRule, VerificationPolicy
from ._provenance import ProvenancePolicy
from ._reference import parse_reference
from ._registry import RegistryClient
from ._trustroot import read_trusted_root
from ._unpack import unpack_image
from ._verify import VerifiedImage, pull_image, require_pinned, verify_remote_image

__all__ = ["ImageGate", "PreparedImage", "image_evidence", "image_gate", "prepare_image"]


class ImageGate(Frozen):
    """What a policy allows for one server's image: registries, signers, digest rule, bases."""

    allowlist: RegistryAllowlist
    verification: VerificationPolicy
    require_digest: bool = True
    require_sbom: bool = False
    approved_bases: tuple[ApprovedBase, ...] = ()


class PreparedImage(Frozen):
    """A verified, unpacked image and what its config asks of the run.

    ``env`` and ``user`` are the config's ``Env`` and ``User`` as the image states them: untrusted
    requests that the sandbox's spec builder filters (``stockade.sandbox.build_spec``), never
    applied as they are.
    """

    verified: VerifiedImage
    manifest_digest: str  # the platform manifest unpacked
    rootfs: str
    argv: tuple[str, ...]
    workdir: str
    env: tuple[str, ...] = ()
    user: str = ""


def _rule(policy: Policy, name: str, server: str | None) -> SignatureRule:
    sig = policy.doc.signatures
    spec = sig.rule(name)
    if spec is None:
        raise SignatureVerificationError(
            f"signature rule {name!r} is not defined in {policy.file}", "define it"
        )
    material = policy.signature_material
    if spec.provenance is None and server is not None:  # the rule's own wins over the server's
        spec = spec.model_copy(update={"provenance": policy.server(server).provenance})
    prov = None
    p = spec.provenance
    if p is not None:
        prov = ProvenancePolicy(
            builder_id=p.builder,
            builder_regex=p.builder_regex,
            source_repository=p.source,
            source_regex=p.source_regex,
        )
    try:
        root_json = material[sig.trusted_root] if sig.trusted_root is not None else None
        if spec.keys:
            return SignatureRule(
                name=name,
                public_keys=tuple(material[k] for k in spec.keys),
                trusted_root_json=root_json,
                provenance=prov,
            )
        assert root_json is not None  # noqa: S101  (the schema requires it for identities)
        root = read_trusted_root(root_json.encode())
        return SignatureRule(
            name=name,
            trusted_root_json=root_json,
            provenance=prov,
            certificate_roots=root.fulcio_roots,
            certificate_intermediates=root.fulcio_intermediates,
            identities=tuple(IdentityMatcher(**i.model_dump()) for i in spec.identities),
            rekor_keys=root.rekor_pems,
        )
    except KeyError as e:
        raise TrustMaterialError(
            f"signature rule {name!r}: file {e.args[0]!r} was not loaded with the policy",
            "load the policy from its file (stockade policy check) so key files are read",
        ) from None
    except ValueError as e:
        raise TrustMaterialError(
            f"signature rule {name!r}: {e}", "fix the rule's keys/root"
        ) from None


def image_gate(policy: Policy, server: str | None) -> ImageGate:
    """The gate for ``server`` (its ``verify:`` rules), or for any rule when no server is named.

    No rule means nothing verifies: the run is refused here rather than at a signature check.
    """
    sig = policy.doc.signatures
    names = policy.server(server).verify if server is not None else tuple(r.name for r in sig.rules)
    if not names:
        who = f"server {server!r}" if server is not None else f"policy {policy.file}"
        raise SignatureVerificationError(
            f"{who} names no signature rule: got no verify: rule, expected at least one "
            "(an image nobody may sign is never run)",
            "add signatures.rules and name them under the server's verify:",
        )
    try:
        allowlist = RegistryAllowlist.of(*policy.registries)
        bases = tuple(ApprovedBase(name=b.name, digest=b.digest) for b in sig.approved_bases)
    except ValueError as e:
        raise TrustMaterialError(f"policy registries/bases: {e}", "fix the policy") from None
    return ImageGate(
        allowlist=allowlist,
        verification=VerificationPolicy(
            rules=tuple(_rule(policy, n, server) for n in names),
            require_sbom=sig.require_sbom,
        ),
        require_digest=sig.require_digest,
        require_sbom=sig.require_sbom,
        approved_bases=bases,
    )


def _config(store: OciLayoutStore, manifest_digest: str) -> dict[str, Any]:
    manifest = parse_manifest(store.blob_path(manifest_digest).read_bytes())
    assert manifest.config is not None  # noqa: S101  (platform manifests always have one)
    if not store.verify_blob(manifest.config.digest):
        raise RegistryError(f"image config {manifest.config.digest} does not hash", "pull again")
    try:
        doc = json.loads(store.blob_path(manifest.config.digest).read_bytes())
    except ValueError:
        raise RegistryError("the image config is not JSON", "rebuild the image") from None
    cfg = doc.get("config") if isinstance(doc, dict) else None
    return cfg if isinstance(cfg, dict) else {}


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise RegistryError("image config Entrypoint/Cmd is not a list of strings", "fix the image")
    return tuple(value)


def _env(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise RegistryError(
            f"image config Env is a {type(value).__name__}, expected a list of NAME=value",
            "fix the image",
        )
    return tuple(v for v in value if isinstance(v, str))


def _user(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RegistryError(
            f"image config User is a {type(value).__name__}, expected a string", "fix the image"
        )
    return value


def prepare_image(
    client: RegistryClient,
    text: str,
    gate: ImageGate,
    *,
    store_root: Path,
    cache: Path,
    clock: Clock,
    command: tuple[str, ...] = (),
) -> PreparedImage:
    """Every supply-chain step for ``text``; raises a ``SupplyChainError`` at the first failure."""
    ref = parse_reference(text)
    if gate.require_digest:
        require_pinned(text)
    verified = verify_remote_image(
        client,
        ref,
        allowlist=gate.allowlist,
        policy=gate.verification,
        clock=clock,
        approved_bases=gate.approved_bases,
        require_sbom=gate.require_sbom,
    )
    store = OciLayoutStore(store_root)
    digest = pull_image(client, verified, store)
    rootfs = unpack_image(store_root, digest, cache)
    cfg = _config(store, digest)
    argv = command or (_strings(cfg.get("Entrypoint")) + _strings(cfg.get("Cmd")))
    if not argv:
        raise RegistryError(
            "the image names no command (no Entrypoint or Cmd) and none was given",
            "pass one: stockade run --image REF -- CMD ARGS...",
        )
    workdir = cfg.get("WorkingDir") or "/"
    if not isinstance(workdir, str) or not workdir.startswith("/"):
        workdir = "/"
    return PreparedImage(
        verified=verified,
        manifest_digest=digest,
        rootfs=str(rootfs),
        argv=argv,
        workdir=workdir,
        env=_env(cfg.get("Env")),
        user=_user(cfg.get("User")),
    )


def image_evidence(
    prepared: PreparedImage, requested: str, verified_at: str
) -> tuple[tuple[str, dict[str, Any]], ...]:
    """The ``verification`` (with provenance), ``image`` and ``sbom`` evidence of the run."""
    v = prepared.verified
    verification = verification_evidence(v, verified_at)
    image = {
        "requested": requested,
        "reference": v.reference,
        "digest": v.pinned.digest,
        "platform_manifest": prepared.manifest_digest,
        "rootfs": prepared.rootfs,
    }
    sbom = (v.sbom or SbomEvidence(present=False)).model_dump(mode="json")
    return (("verification", verification), ("image", image), ("sbom", sbom))


def verification_evidence(v: VerifiedImage, verified_at: str) -> dict[str, Any]:
    """What verified the image (rule, signer, log entry, registry rule, provenance, approved
    base): the same fields for a local image run and a Pod."""
    ev = v.evidence
    verification: dict[str, Any] = {
        "rule": ev.rule,
        "signer_kind": ev.signer_kind,
        "key_id": ev.key_id,
        "subject": ev.subject,
        "issuer": ev.issuer,
        "log_index": ev.log_index,
        "integrated_time": ev.integrated_time,
        "registry_rule": v.allowed_by,
        "signed_reference": ev.signed_reference,
        "found_via": ev.found_via,
        "verified_at": verified_at,
        "provenance": None if v.provenance is None else v.provenance.model_dump(mode="json"),
    }
    if v.base is not None:
        verification["approved_base"] = v.base.model_dump(mode="json")
    return verification
