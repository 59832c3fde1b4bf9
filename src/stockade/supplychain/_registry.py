"""OCI distribution API v2 client (httpx): HTTPS by default, every digest and size checked.

Plain HTTP is allowed only for registries listed in ``plain_http`` *and* on loopback. Anonymous
pulls, and bearer tokens obtained from the realm a registry names in ``WWW-Authenticate``. Every
read is capped; every manifest and blob is hashed and compared with the digest that named it; a
``Docker-Content-Digest`` header that disagrees with the bytes refuses the response.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from urllib.parse import urlparse

import httpx

from ._errors import RegistryError
from ._manifest import MANIFEST_MEDIA_TYPES, ImageManifest, parse_manifest
from ._reference import ImageReference

__all__ = ["Credentials", "RegistryClient"]

MAX_MANIFEST = 4 * 1024 * 1024
MAX_TOKEN = 64 * 1024
MAX_BLOB_DEFAULT = 2 * 1024 * 1024 * 1024
_CHUNK = 1024 * 1024
Credentials = Callable[[str], tuple[str, str] | None]
_AUTH_PARAM = re.compile(r'(\w+)="([^"]*)"')


def is_loopback(registry: str) -> bool:
    host = urlparse(f"//{registry}").hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RegistryClient:
    """A small, strict registry client. Use as a context manager."""

    def __init__(
        self,
        *,
        plain_http: tuple[str, ...] = (),
        credentials: Credentials | None = None,
        timeout: float = 30.0,
        max_blob: int = MAX_BLOB_DEFAULT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        for registry in plain_http:
            if not is_loopback(registry):
                raise RegistryError(
                    f"plain HTTP refused for {registry}: got a non-loopback registry, "
                    "expected 127.0.0.0/8, [::1] or localhost",
                    "use HTTPS for every registry that is not on this machine",
                )
        self.plain_http = frozenset(plain_http)
        self.credentials = credentials
        self.max_blob = max_blob
        self._tokens: dict[tuple[str, str], str] = {}
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            transport=transport,
            trust_env=False,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._http.close()

    # --- transport -----------------------------------------------------------------------------

    def _base(self, registry: str) -> str:
        host = "registry-1.docker.io" if registry == "docker.io" else registry
        scheme = "http" if registry in self.plain_http else "https"
        return f"{scheme}://{host}"

    def _token(self, registry: str, challenge: str, scope: str) -> str:
        scheme, _, params = challenge.partition(" ")
        if scheme.lower() != "bearer":
            raise RegistryError(
                f"{registry} asks for {scheme or 'unknown'} auth, expected a Bearer challenge",
                "stockade supports anonymous and bearer-token registries",
            )
        fields = dict(_AUTH_PARAM.findall(params))
        realm = fields.get("realm", "")
        parsed = urlparse(realm)
        realm_host = parsed.netloc
        if parsed.scheme != "https" and not (
            parsed.scheme == "http" and realm_host in self.plain_http and is_loopback(realm_host)
        ):
            raise RegistryError(
                f"token realm {realm[:120]!r} of {registry}: got a non-HTTPS realm, expected https",
                "the registry's token service must use HTTPS",
            )
        query = {"scope": fields.get("scope", scope)}
        if "service" in fields:
            query["service"] = fields["service"]
        auth = self.credentials(registry) if self.credentials else None
        try:
            with self._http.stream("GET", realm, params=query, auth=auth) as r:
                body = self._read(r, MAX_TOKEN, "token response")
        except httpx.HTTPError as e:
            raise self._unreachable(registry, e) from None
        if r.status_code != 200:
            raise RegistryError(
                f"token service of {registry}: got HTTP {r.status_code}, expected 200",
                "check the registry credentials",
            )
        try:
            doc = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise RegistryError(f"token service of {registry} did not answer JSON", "") from None
        token = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
        if not isinstance(token, str) or not token:
            raise RegistryError(f"token service of {registry} returned no token", "")
        return token

    @staticmethod
    def _unreachable(registry: str, e: httpx.HTTPError) -> RegistryError:
        kind = "timed out" if isinstance(e, httpx.TimeoutException) else "unreachable"
        return RegistryError(
            f"registry {registry} {kind}: {type(e).__name__}",
            "check the registry address and network; nothing unverified will run",
        )

    @staticmethod
    def _read(response: httpx.Response, cap: int, what: str) -> bytes:
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            raise RegistryError(f"{what}: got {declared} bytes declared, expected <= {cap}", "")
        out = bytearray()
        for chunk in response.iter_bytes(_CHUNK):
            out += chunk
            if len(out) > cap:
                raise RegistryError(f"{what}: got more than {cap} bytes, expected <= {cap}", "")
        return bytes(out)

    @contextmanager
    def _request(
        self,
        method: str,
        registry: str,
        repository: str,
        path: str,
        *,
        push: bool = False,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        url: str | None = None,
    ) -> Iterator[httpx.Response]:
        scope = f"repository:{repository}:{'pull,push' if push else 'pull'}"
        target = url or f"{self._base(registry)}/v2/{repository}/{path}"
        hdrs = dict(headers or {})
        for attempt in range(2):
            token = self._tokens.get((registry, scope))
            if token:
                hdrs["Authorization"] = f"Bearer {token}"
            try:
                with self._http.stream(method, target, headers=hdrs, content=content) as r:
                    if r.status_code == 401 and attempt == 0:
                        challenge = r.headers.get("www-authenticate", "")
                        self._tokens[(registry, scope)] = self._token(registry, challenge, scope)
                        continue
                    yield r
                    return
            except httpx.HTTPError as e:
                raise self._unreachable(registry, e) from None
        raise RegistryError(f"{registry} refused the token: got HTTP 401 twice", "check access")

    # --- reads -----------------------------------------------------------------------------------

    def get_manifest(self, ref: ImageReference) -> tuple[bytes, ImageManifest, str]:
        """Manifest bytes, parsed manifest and sha256 digest; the digest is checked, not trusted."""
        target = ref.digest or ref.tag or "latest"
        with self._request(
            "GET",
            ref.registry,
            ref.repository,
            f"manifests/{target}",
            headers={"Accept": ", ".join(MANIFEST_MEDIA_TYPES)},
        ) as r:
            if r.status_code == 404:
                raise RegistryError(f"{ref}: manifest not found (HTTP 404)", "check the reference")
            if r.status_code != 200:
                raise RegistryError(f"{ref}: got HTTP {r.status_code}, expected 200", "")
            raw = self._read(r, MAX_MANIFEST, f"manifest of {ref.name}")
            header_digest = r.headers.get("docker-content-digest")
            content_type = r.headers.get("content-type")
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        if ref.digest is not None and digest != ref.digest:
            raise RegistryError(
                f"{ref.name}: manifest bytes hash to {digest}, expected {ref.digest}",
                "the registry served other content than the pinned digest: refuse it",
            )
        if header_digest is not None and header_digest != digest:
            raise RegistryError(
                f"{ref.name}: Docker-Content-Digest {header_digest[:80]} differs from the "
                f"bytes' digest {digest}",
                "the registry is inconsistent or tampered with: refuse it",
            )
        return raw, parse_manifest(raw, content_type), digest

    def get_referrers(self, ref: ImageReference) -> bytes | None:
        """The OCI 1.1 referrers index of ``ref``'s digest; None when the API is not served."""
        with self._request(
            "GET",
            ref.registry,
            ref.repository,
            f"referrers/{ref.digest}",
            headers={"Accept": "application/vnd.oci.image.index.v1+json"},
        ) as r:
            if r.status_code in (404, 405):
                return None
            if r.status_code != 200:
                raise RegistryError(f"referrers of {ref.name}: got HTTP {r.status_code}", "")
            return self._read(r, MAX_MANIFEST, f"referrers of {ref.name}")

    def resolve(self, ref: ImageReference) -> ImageReference:
        """``ref`` pinned to the digest of the manifest its tag names now."""
        _, _, digest = self.get_manifest(ref)
        return ref.with_digest(digest)

    def get_blob(self, ref: ImageReference, digest: str, size: int | None = None) -> bytes:
        """A blob, capped and checked against ``digest`` (and ``size`` when known)."""
        cap = self.max_blob if size is None else min(size, self.max_blob)
        with self._request("GET", ref.registry, ref.repository, f"blobs/{digest}") as r:
            if r.status_code in (301, 302, 303, 307, 308):
                location = r.headers.get("location", "")
                if not location.startswith("https://") and not (
                    ref.registry in self.plain_http and location.startswith("/")
                ):
                    raise RegistryError(
                        f"blob {digest}: redirect to {location[:120]!r}, expected https",
                        "the registry must serve blobs over HTTPS",
                    )
                if location.startswith("/"):
                    location = self._base(ref.registry) + location
                try:
                    with self._http.stream("GET", location) as r2:
                        return self._check_blob(r2, ref, digest, size, cap)
                except httpx.HTTPError as e:
                    raise self._unreachable(ref.registry, e) from None
            return self._check_blob(r, ref, digest, size, cap)

    def _check_blob(
        self, r: httpx.Response, ref: ImageReference, digest: str, size: int | None, cap: int
    ) -> bytes:
        if r.status_code != 200:
            raise RegistryError(f"{ref.name} blob {digest}: got HTTP {r.status_code}", "")
        data = self._read(r, cap, f"blob {digest}")
        if size is not None and len(data) != size:
            raise RegistryError(f"blob {digest}: got {len(data)} bytes, expected {size}", "")
        got = "sha256:" + hashlib.sha256(data).hexdigest()
        if got != digest:
            raise RegistryError(
                f"blob of {ref.name}: bytes hash to {got}, expected {digest}",
                "the registry served tampered content: refuse it",
            )
        return data

    # --- writes (tests, signing) -----------------------------------------------------------------

    def push_blob(self, ref: ImageReference, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        with self._request("POST", ref.registry, ref.repository, "blobs/uploads/", push=True) as r:
            if r.status_code != 202:
                raise RegistryError(f"blob upload to {ref.name}: got HTTP {r.status_code}", "")
            location = r.headers.get("location", "")
        base = self._base(ref.registry)
        url = location if location.startswith(("http://", "https://")) else base + location
        sep = "&" if "?" in url else "?"
        with self._request(
            "PUT",
            ref.registry,
            ref.repository,
            "",
            push=True,
            url=f"{url}{sep}digest={digest}",
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        ) as r:
            if r.status_code != 201:
                raise RegistryError(f"blob PUT to {ref.name}: got HTTP {r.status_code}", "")
        return digest

    def push_manifest(self, ref: ImageReference, raw: bytes, media_type: str, tag: str) -> str:
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        with self._request(
            "PUT",
            ref.registry,
            ref.repository,
            f"manifests/{tag}",
            push=True,
            content=raw,
            headers={"Content-Type": media_type},
        ) as r:
            if r.status_code != 201:
                raise RegistryError(f"manifest PUT to {ref.name}: got HTTP {r.status_code}", "")
        return digest
