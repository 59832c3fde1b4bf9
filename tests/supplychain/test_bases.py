"""An image must declare an approved base and begin with exactly that base's layers."""

from __future__ import annotations

import json

import pytest

from stockade.supplychain import (
    BASE_DIGEST,
    BASE_NAME,
    ApprovedBase,
    BaseImageError,
    RegistryAllowlist,
    RegistryClient,
    SignatureRule,
    VerificationPolicy,
    check_base,
    load_private_key,
    parse_manifest,
    parse_reference,
    push_signature,
    sign_image,
    verify_remote_image,
)

from .fakelog import new_p256, public_pem
from .images import CONFIG, LAYER, OCI_MANIFEST, desc, layer, push_image
from .test_sign import _pem
from .vectors import FixedClock

BASE_D = "sha256:" + "b" * 64
L1, L2, L3 = ("sha256:" + c * 64 for c in "123")


def manifest(layers: list[str], annotations: dict[str, str] | None = None) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": CONFIG, "digest": "sha256:" + "c" * 64, "size": 2},
            "layers": [{"mediaType": LAYER, "digest": d, "size": 1} for d in layers],
            **({"annotations": annotations} if annotations else {}),
        }
    ).encode()


APPROVED = (ApprovedBase(name="gcr.io/distroless/static", digest=BASE_D),)
DECL = {BASE_NAME: "gcr.io/distroless/static:nonroot", BASE_DIGEST: BASE_D}


@pytest.mark.guarantee("image-approved-base")
def test_an_image_on_an_approved_base_with_its_layers_first_passes() -> None:
    m = parse_manifest(manifest([L1, L2, L3], DECL))
    assert check_base(m, APPROVED, (L1, L2)) == APPROVED[0]


@pytest.mark.guarantee("image-approved-base")
@pytest.mark.parametrize(
    ("layers", "annotations", "base_layers", "reason"),
    [
        ([L1, L2], None, (L1,), "no base annotations"),
        ([L1, L2], {**DECL, BASE_NAME: "docker.io/library/debian"}, (L1,), "declared base"),
        ([L1, L2], {**DECL, BASE_DIGEST: "sha256:" + "e" * 64}, (L1,), "declared base"),
        ([L2, L1], DECL, (L1,), "first layers"),
        ([L1], DECL, (L1, L2), "first layers"),
        ([L1, L2], {**DECL, BASE_DIGEST: "latest"}, (L1,), "malformed"),
    ],
)
def test_undeclared_unapproved_or_rebased_images_are_denied(
    layers: list[str],
    annotations: dict[str, str] | None,
    base_layers: tuple[str, ...],
    reason: str,
) -> None:
    with pytest.raises(BaseImageError, match=reason):
        check_base(parse_manifest(manifest(layers, annotations)), APPROVED, base_layers)


@pytest.mark.registry
@pytest.mark.guarantee("image-approved-base")
def test_the_gate_fetches_the_base_and_checks_it_against_the_registry(registry: str) -> None:
    key = new_p256()
    with RegistryClient(plain_http=(registry,)) as client:
        base_ref, base_raw = push_image(client, f"{registry}/bases/static", "v1", {"etc/os": b"b"})
        assert base_ref.digest is not None
        base_layer_desc = json.loads(base_raw)["layers"][0]
        app_layer = layer({"app": b"app"})
        ref = parse_reference(f"{registry}/acme/app:v1")
        client.push_blob(ref, layer({"etc/os": b"b"}))
        client.push_blob(ref, app_layer)
        config = b'{"architecture":"amd64","os":"linux"}'
        client.push_blob(ref, config)
        raw = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": desc(CONFIG, config),
                "layers": [base_layer_desc, desc(LAYER, app_layer)],
                "annotations": {BASE_NAME: base_ref.name, BASE_DIGEST: base_ref.digest},
            }
        ).encode()
        pinned = ref.with_digest(client.push_manifest(ref, raw, OCI_MANIFEST, "v1"))
        push_signature(client, pinned, sign_image(load_private_key(_pem(key)), pinned))
        policy = VerificationPolicy(
            rules=(SignatureRule(name="k", public_keys=(public_pem(key).decode(),)),)
        )
        allow = RegistryAllowlist.of(f"{registry}/*")
        ok = verify_remote_image(
            client,
            ref,
            allowlist=allow,
            policy=policy,
            clock=FixedClock(),
            approved_bases=(ApprovedBase(name=base_ref.name, digest=base_ref.digest),),
        )
        assert ok.base is not None
        other = ApprovedBase(name=f"{registry}/bases/other", digest=base_ref.digest)
        with pytest.raises(BaseImageError, match="declared base"):
            verify_remote_image(
                client,
                ref,
                allowlist=allow,
                policy=policy,
                clock=FixedClock(),
                approved_bases=(other,),
            )
