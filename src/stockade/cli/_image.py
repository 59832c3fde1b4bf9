"""``stockade image``: resolve, verify, sign and pull container images; verify Sigstore bundles.

``verify-bundle`` follows the sigstore-conformance client protocol::

    stockade image verify-bundle --bundle B (--certificate-identity I --certificate-oidc-issuer O
                                             | --key K) [--trusted-root T] FILE_OR_DIGEST

and exits 0 only when the bundle verified.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from stockade.errors import UsageError
from stockade.textsafe import safe_text

if TYPE_CHECKING:
    from stockade.supplychain import (
        RegistryAllowlist,
        RegistryClient,
        VerificationPolicy,
        VerifiedImage,
    )

__all__ = ["image"]

F = TypeVar("F", bound=Callable[..., Any])

MAX_FILE = 64 * 1024 * 1024


def _read(path: Path, what: str, cap: int = MAX_FILE) -> bytes:
    try:
        with path.open("rb") as f:
            data = f.read(cap + 1)
    except OSError as e:
        raise UsageError(
            f"cannot read {what} {safe_text(str(path))}: {e.strerror}",
            f"check the {what} path",
        ) from None
    if len(data) > cap:
        raise UsageError(f"{what} {safe_text(str(path))} is larger than {cap} bytes", "")
    return data


def _embedded_trusted_root() -> bytes:
    """The Sigstore production trusted root shipped inside sigstore-python (no network fetch)."""
    from stockade.supplychain import TrustMaterialError

    try:
        store = resources.files("sigstore") / "_store" / "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev"
        return (store / "trusted_root.json").read_bytes()
    except (OSError, ModuleNotFoundError):
        raise TrustMaterialError(
            "no trusted root: none given and none embedded in the installed sigstore package",
            "pass --trusted-root trusted_root.json",
        ) from None


@click.group(name="image")
def image() -> None:
    """Resolve, verify, sign and pull container images (fail closed)."""


@image.command(name="verify-bundle")
@click.option("--bundle", "bundle_path", required=True, type=click.Path(path_type=Path))
@click.option("--certificate-identity", "identity", default=None)
@click.option("--certificate-identity-regexp", "identity_regex", default=None)
@click.option("--certificate-oidc-issuer", "issuer", default=None)
@click.option("--certificate-oidc-issuer-regexp", "issuer_regex", default=None)
@click.option("--key", "key_path", default=None, type=click.Path(path_type=Path))
@click.option("--trusted-root", "root_path", default=None, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the evidence as JSON.")
@click.argument("file_or_digest")
def verify_bundle_cmd(
    *,
    bundle_path: Path,
    identity: str | None,
    identity_regex: str | None,
    issuer: str | None,
    issuer_regex: str | None,
    key_path: Path | None,
    root_path: Path | None,
    as_json: bool,
    file_or_digest: str,
) -> None:
    """Verify a Sigstore bundle over FILE_OR_DIGEST (a file, or sha256:<hex>); exit 0 if valid."""
    from stockade.supplychain import IdentityMatcher, verify_bundle, verify_bundle_with_key

    has_identity = (identity or identity_regex) is not None
    if (key_path is None) == (not has_identity):
        raise UsageError(
            "give either --key, or --certificate-identity[-regexp] with "
            "--certificate-oidc-issuer[-regexp]",
            "see stockade image verify-bundle --help",
        )
    if has_identity and issuer is None and issuer_regex is None:
        raise UsageError("--certificate-oidc-issuer is required with an identity", "")
    trusted_root = _read(root_path, "trusted root") if root_path else _embedded_trusted_root()
    bundle = _read(bundle_path, "bundle")
    artifact: bytes | str = (
        file_or_digest
        if file_or_digest.startswith("sha256:")
        else _read(Path(file_or_digest), "artifact")
    )
    if key_path is not None:
        evidence = verify_bundle_with_key(
            bundle, artifact, key_pem=_read(key_path, "key"), trusted_root=trusted_root
        )
    else:
        try:
            matcher = IdentityMatcher(
                subject=identity,
                subject_regex=identity_regex,
                issuer=issuer,
                issuer_regex=issuer_regex,
            )
        except ValueError as e:
            raise UsageError(f"invalid identity: {e}", "fix the identity options") from None
        evidence = verify_bundle(bundle, artifact, identities=(matcher,), trusted_root=trusted_root)
    if as_json:
        click.echo(evidence.model_dump_json(indent=2))
    else:
        click.echo(
            f"OK: {safe_text(evidence.artifact_digest)} signed by "
            f"{safe_text(evidence.subject, single_line=True)}"
            + (f" ({safe_text(evidence.issuer, single_line=True)})" if evidence.issuer else "")
            + f", log index {evidence.log_index}"
        )


@image.command(name="sign")
@click.option("--key", "key_path", required=True, type=click.Path(path_type=Path))
@click.option(
    "--password-env",
    default=None,
    help="Name of the environment variable holding the key's password (never on the command line).",
)
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write payload.json and signature.b64 here instead of pushing to the registry.",
)
@click.option("--plain-http", "plain_http", multiple=True, help="Loopback registry host:port.")
@click.argument("ref")
def sign_cmd(
    key_path: Path,
    password_env: str | None,
    output_dir: Path | None,
    plain_http: tuple[str, ...],
    ref: str,
) -> None:
    """Sign REF (name@sha256:...) with --key: cosign-compatible payload and signature."""
    import os

    from stockade.supplychain import load_private_key, parse_reference, sign_image

    password: bytes | None = None
    if password_env is not None:
        value = os.environ.get(password_env)
        if value is None:
            raise UsageError(f"environment variable {password_env} is not set", "")
        password = value.encode()
    key = load_private_key(_read(key_path, "key"), password)
    target = parse_reference(ref)
    layer = sign_image(key, target)
    if output_dir is not None:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "payload.json").write_bytes(layer.payload)
        (output_dir / "signature.b64").write_text(
            layer.annotations["dev.cosignproject.cosign/signature"] + "\n"
        )
        click.echo(f"signed {safe_text(str(target))}: wrote {safe_text(str(output_dir))}")
        return
    from stockade.supplychain import RegistryClient, push_signature

    with RegistryClient(plain_http=plain_http) as client:
        tag = push_signature(client, target, layer)
    click.echo(f"signed {safe_text(str(target))}: pushed {safe_text(tag)}")


_plain_http = click.option(
    "--plain-http",
    "plain_http",
    multiple=True,
    help="Registry host:port on loopback to reach over plain HTTP (repeatable).",
)


@image.command(name="resolve")
@_plain_http
@click.argument("ref")
def resolve_cmd(plain_http: tuple[str, ...], ref: str) -> None:
    """Print REF pinned to the digest its tag names now (digest checked against the bytes)."""
    from stockade.supplychain import RegistryClient, parse_reference

    with RegistryClient(plain_http=plain_http) as client:
        click.echo(safe_text(str(client.resolve(parse_reference(ref))), single_line=True))


def _policy(
    *,
    keys: tuple[Path, ...],
    identity: str | None,
    identity_regex: str | None,
    issuer: str | None,
    issuer_regex: str | None,
    root_path: Path | None,
    allow: tuple[str, ...],
) -> tuple[RegistryAllowlist, VerificationPolicy]:
    from stockade.supplychain import (
        IdentityMatcher,
        RegistryAllowlist,
        SignatureRule,
        VerificationPolicy,
        read_trusted_root,
    )

    rules = []
    if keys:
        rules.append(
            SignatureRule(
                name="--key",
                public_keys=tuple(_read(k, "key").decode("utf-8", "replace") for k in keys),
            )
        )
    if identity is not None or identity_regex is not None:
        root = read_trusted_root(
            _read(root_path, "trusted root") if root_path else _embedded_trusted_root()
        )
        try:
            matcher = IdentityMatcher(
                subject=identity,
                subject_regex=identity_regex,
                issuer=issuer,
                issuer_regex=issuer_regex,
            )
            rules.append(
                SignatureRule(
                    name="--certificate-identity",
                    certificate_roots=root.fulcio_roots,
                    certificate_intermediates=root.fulcio_intermediates,
                    identities=(matcher,),
                    rekor_keys=root.rekor_pems,
                )
            )
        except ValueError as e:
            raise UsageError(f"invalid identity: {e}", "fix the identity options") from None
    return RegistryAllowlist.of(*allow), VerificationPolicy(rules=tuple(rules))


_verify_options: list[Callable[[Any], Any]] = [
    click.option("--key", "keys", multiple=True, type=click.Path(path_type=Path)),
    click.option("--certificate-identity", "identity", default=None),
    click.option("--certificate-identity-regexp", "identity_regex", default=None),
    click.option("--certificate-oidc-issuer", "issuer", default=None),
    click.option("--certificate-oidc-issuer-regexp", "issuer_regex", default=None),
    click.option("--trusted-root", "root_path", default=None, type=click.Path(path_type=Path)),
    click.option(
        "--allow", "allow", multiple=True, help="Registry allowlist rule registry/namespace/*."
    ),
    click.option(
        "--policy",
        "policy_path",
        default=None,
        type=click.Path(dir_okay=False, path_type=Path),
        help="Take registries, keys/identities, trusted root, provenance and SBOM rules from "
        "this policy (instead of the ad-hoc trust options).",
    ),
    click.option(
        "--server", "server", default=None, help="With --policy: use this server's verify: rules."
    ),
    _plain_http,
]


def _with_verify_options(f: F) -> F:
    for opt in reversed(_verify_options):
        f = opt(f)
    return f


def _verify(
    ref: str,
    *,
    keys: tuple[Path, ...],
    identity: str | None,
    identity_regex: str | None,
    issuer: str | None,
    issuer_regex: str | None,
    root_path: Path | None,
    allow: tuple[str, ...],
    policy_path: Path | None,
    server: str | None,
    plain_http: tuple[str, ...],
) -> tuple[RegistryClient, VerifiedImage]:
    from stockade.models import SystemClock
    from stockade.supplychain import (
        ImageGate,
        RegistryClient,
        image_gate,
        parse_reference,
        verify_remote_image,
    )

    adhoc = [
        name
        for name, given in (
            ("--key", bool(keys)),
            ("--certificate-identity", identity is not None),
            ("--certificate-identity-regexp", identity_regex is not None),
            ("--certificate-oidc-issuer", issuer is not None),
            ("--certificate-oidc-issuer-regexp", issuer_regex is not None),
            ("--trusted-root", root_path is not None),
            ("--allow", bool(allow)),
        )
        if given
    ]
    if policy_path is not None:
        if adhoc:
            raise UsageError(
                f"--policy takes trust from the policy file: got also {', '.join(adhoc)}",
                "use either --policy FILE [--server NAME], or the ad-hoc trust options",
            )
        from stockade.policy import load_policy

        gate = image_gate(load_policy(policy_path), server)
    else:
        if server is not None:
            raise UsageError("--server needs --policy", "pass --policy FILE --server NAME")
        allowlist, policy = _policy(
            keys=keys,
            identity=identity,
            identity_regex=identity_regex,
            issuer=issuer,
            issuer_regex=issuer_regex,
            root_path=root_path,
            allow=allow,
        )
        gate = ImageGate(allowlist=allowlist, verification=policy)
    client = RegistryClient(plain_http=plain_http)
    try:
        verified = verify_remote_image(
            client,
            parse_reference(ref),
            allowlist=gate.allowlist,
            policy=gate.verification,
            clock=SystemClock(),
            approved_bases=gate.approved_bases,
            require_sbom=gate.require_sbom,
        )
    except BaseException:
        client.close()
        raise
    return client, verified


@image.command(name="verify")
@_with_verify_options
@click.option("--json", "as_json", is_flag=True)
@click.argument("ref")
def verify_cmd(ref: str, as_json: bool, **opts: Any) -> None:
    """Verify REF: allowlist, digest, signature; print the pinned digest and evidence."""
    client, verified = _verify(ref, **opts)
    client.close()
    if as_json:
        click.echo(verified.model_dump_json(indent=2))
        return
    ev = verified.evidence
    who = ev.subject or ev.key_id
    click.echo(f"verified {safe_text(verified.reference, single_line=True)}")
    click.echo(f"  signer: {safe_text(who, single_line=True)} (rule {safe_text(ev.rule)})")
    if verified.provenance is not None:
        p = verified.provenance
        click.echo(
            f"  provenance: builder {safe_text(p.builder_id, single_line=True)}, "
            f"source {safe_text(p.source_repository, single_line=True)}"
        )
    if verified.sbom is not None and verified.sbom.present:
        s = verified.sbom
        click.echo(
            f"  sbom: {safe_text(str(s.media_type))} {safe_text(str(s.digest))} ({s.size} B)"
        )


@image.command(name="pull")
@_with_verify_options
@click.option(
    "--store", "store_path", required=True, type=click.Path(file_okay=False, path_type=Path)
)
@click.option("--platform", "platform", default="linux/amd64", show_default=True)
@click.argument("ref")
def pull_cmd(ref: str, store_path: Path, platform: str, **opts: Any) -> None:
    """Verify REF, then fetch it (digest-checked) into an OCI layout store."""
    from stockade.supplychain import OciLayoutStore, Platform, pull_image

    parts = platform.split("/")
    if len(parts) not in (2, 3):
        raise UsageError(f"platform {safe_text(platform)!r}: expected os/arch[/variant]", "")
    want = Platform(
        os=parts[0], architecture=parts[1], variant=parts[2] if len(parts) == 3 else None
    )
    client, verified = _verify(ref, **opts)
    try:
        digest = pull_image(client, verified, OciLayoutStore(store_path), platform=want)
    finally:
        client.close()
    click.echo(
        f"pulled {safe_text(verified.reference)} ({digest}) into {safe_text(str(store_path))}"
    )
