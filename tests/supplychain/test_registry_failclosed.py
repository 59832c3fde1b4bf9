"""A hostile or broken registry (an httpx MockTransport playing one) is refused on every path."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

import httpx
import pytest

from stockade.supplychain import (
    RegistryAllowlist,
    RegistryClient,
    RegistryError,
    SignatureVerificationError,
    VerificationPolicy,
    parse_reference,
    verify_remote_image,
)

from .vectors import FixedClock

MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": "sha256:" + hashlib.sha256(b"{}").hexdigest(),
            "size": 2,
        },
        "layers": [],
    }
).encode()
DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
OCI = "application/vnd.oci.image.manifest.v1+json"


def client_for(handler: Callable[[httpx.Request], httpx.Response]) -> RegistryClient:
    return RegistryClient(transport=httpx.MockTransport(handler))


def serve(body: bytes, **headers: str) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"Content-Type": OCI, **headers})

    return handler


@pytest.mark.guarantee("image-reject-tampered-manifest")
def test_a_docker_content_digest_that_disagrees_with_the_bytes_is_refused() -> None:
    tampered = MANIFEST.replace(b'"layers": []', b'"layers":[]')
    handler = serve(tampered, **{"Docker-Content-Digest": DIGEST})
    with client_for(handler) as c, pytest.raises(RegistryError, match="Docker-Content-Digest"):
        c.resolve(parse_reference("ghcr.io/acme/tool:v1"))


@pytest.mark.guarantee("image-reject-tampered-manifest")
def test_bytes_that_do_not_hash_to_the_pinned_digest_are_refused() -> None:
    tampered = MANIFEST.replace(b'"layers": []', b'"layers":[]')
    with client_for(serve(tampered)) as c, pytest.raises(RegistryError, match="pinned digest"):
        c.get_manifest(parse_reference(f"ghcr.io/acme/tool@{DIGEST}"))


def test_the_client_talks_https_to_registries_by_default() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, content=MANIFEST, headers={"Content-Type": OCI})

    with client_for(handler) as c:
        c.resolve(parse_reference("ghcr.io/acme/tool:v1"))
        c.resolve(parse_reference("nginx:1"))
    assert seen == [
        "https://ghcr.io/v2/acme/tool/manifests/v1",
        "https://registry-1.docker.io/v2/library/nginx/manifests/1",
    ]


@pytest.mark.parametrize("registry", ["ghcr.io", "10.0.0.1:5000", "192.168.1.2", "example.com"])
def test_plain_http_is_refused_for_non_loopback_registries(registry: str) -> None:
    with pytest.raises(RegistryError, match="plain HTTP refused"):
        RegistryClient(plain_http=(registry,))


@pytest.mark.guarantee("image-registry-unreachable")
def test_a_timeout_denies_with_the_reason() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with client_for(handler) as c, pytest.raises(RegistryError, match="timed out"):
        c.resolve(parse_reference("ghcr.io/acme/tool:v1"))


@pytest.mark.guarantee("image-malformed-manifest")
@pytest.mark.parametrize(
    ("body", "media", "reason"),
    [
        (b"not json", OCI, "not JSON"),
        (b'{"schemaVersion": 1, "name": "x"}', OCI, "schemaVersion"),
        (b'{"schemaVersion": 2, "mediaType": "application/x-evil", "layers": []}', OCI, "differs"),
        (
            b'{"schemaVersion": 2, "mediaType": "application/x-evil", "layers": []}',
            "application/x-evil",
            "unknown manifest media type",
        ),
        (
            b'{"schemaVersion": 2, "mediaType": "' + OCI.encode() + b'", "layers": []}',
            OCI,
            "config",
        ),
        (
            MANIFEST.replace(b'"size": 2', b'"size": -1'),
            OCI,
            "size",
        ),
        (MANIFEST.replace(b"sha256:", b"md5:"), OCI, "digest"),
    ],
)
def test_malformed_manifests_and_unknown_media_types_are_refused(
    body: bytes, media: str, reason: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"Content-Type": media})

    with client_for(handler) as c, pytest.raises(RegistryError, match=reason):
        c.get_manifest(parse_reference("ghcr.io/acme/tool:v1"))


def test_reads_are_capped() -> None:
    huge = b"{" + b" " * (5 * 1024 * 1024) + b"}"
    with client_for(serve(huge)) as c, pytest.raises(RegistryError, match="expected <="):
        c.get_manifest(parse_reference("ghcr.io/acme/tool:v1"))


def test_a_blob_of_the_wrong_size_or_digest_is_refused() -> None:
    data = b"layer bytes"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    ref = parse_reference("ghcr.io/acme/tool:v1")
    with client_for(serve(data)) as c:
        assert c.get_blob(ref, digest, len(data)) == data
        with pytest.raises(RegistryError, match="expected <="):
            c.get_blob(ref, digest, len(data) - 1)
        with pytest.raises(RegistryError, match="expected 20"):
            c.get_blob(ref, digest, 20)
    with client_for(serve(b"other bytes")) as c, pytest.raises(RegistryError, match="hash to"):
        c.get_blob(ref, digest, len(data))


def test_bearer_tokens_are_fetched_from_the_https_realm_and_used() -> None:
    calls: list[tuple[str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append((str(request.url), request.headers.get("authorization")))
        if request.url.host == "auth.example":
            assert request.url.params["scope"] == "repository:acme/tool:pull"
            assert request.url.params["service"] == "reg"
            return httpx.Response(200, json={"token": "t0k"})
        if request.headers.get("authorization") != "Bearer t0k":
            return httpx.Response(
                401,
                headers={
                    "WWW-Authenticate": 'Bearer realm="https://auth.example/token",service="reg"'
                },
            )
        return httpx.Response(200, content=MANIFEST, headers={"Content-Type": OCI})

    with client_for(handler) as c:
        assert c.resolve(parse_reference("ghcr.io/acme/tool:v1")).digest == DIGEST
    assert calls[-1][1] == "Bearer t0k"
    assert len(calls) == 3


@pytest.mark.parametrize(
    "challenge",
    ['Bearer realm="http://auth.example/token"', 'Basic realm="x"', "Bearer"],
)
def test_a_non_https_realm_or_other_auth_scheme_is_refused(challenge: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, headers={"WWW-Authenticate": challenge})

    with client_for(handler) as c, pytest.raises(RegistryError):
        c.resolve(parse_reference("ghcr.io/acme/tool:v1"))


@pytest.mark.guarantee("image-policy-without-rule")
def test_a_policy_without_a_signature_rule_denies() -> None:
    with client_for(serve(MANIFEST)) as c:
        ref = parse_reference("ghcr.io/acme/tool:v1")
        allow = RegistryAllowlist.of("ghcr.io/acme/*")
        with pytest.raises(SignatureVerificationError, match="no signature rule"):
            verify_remote_image(
                c, ref, allowlist=allow, policy=VerificationPolicy(), clock=FixedClock()
            )
