"""``stockade run --image``: a signed, allowlisted image runs on gVisor; every bad case is refused.

Everything is real: Debian's docker-registry on loopback, images built here (busybox-static in one
layer), signatures made with a key made here, the stockade CLI as a subprocess, runsc.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from stockade.errors import SandboxError
from stockade.sandbox import find_gvisor
from stockade.supplychain import (
    ImageReference,
    RegistryClient,
    load_private_key,
    parse_reference,
    push_signature,
    sign_image,
)

pytestmark = [pytest.mark.gvisor, pytest.mark.registry]

BUSYBOX = Path("/bin/busybox")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
CONFIG = "application/vnd.oci.image.config.v1+json"
GREETING = "hello-from-a-signed-image"


# -- a registry whose storage the tests can reach (to tamper with it) -----------------------------


@dataclass(frozen=True)
class Registry:
    host: str
    storage: Path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.skip("REGISTRY ABSENT: docker-registry is not installed (apt-get install it)")
    root = tmp_path_factory.mktemp("image-registry")
    port = _free_port()
    (root / "config.yml").write_text(
        "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n  draintimeout: 1s\n"
    )
    proc = subprocess.Popen(
        [binary, "serve", str(root / "config.yml")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=root,
    )  # fmt: skip
    ready = threading.Event()

    def drain() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            if b"listening on" in line:
                ready.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        assert ready.wait(20), "docker-registry did not start within 20 s"
        yield Registry(f"127.0.0.1:{port}", root / "data")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        reader.join(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()


# -- images and keys -----------------------------------------------------------------------------


def _layer(extra: dict[str, bytes] | None = None, slip: bool = False) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for d in ("bin", "proc", "dev", "tmp", "etc", "run", "run/secrets"):
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        data = BUSYBOX.read_bytes()
        info = tarfile.TarInfo("bin/busybox")
        info.size = len(data)
        info.mode = 0o755
        tar.addfile(info, io.BytesIO(data))
        for name, content in (extra or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(content))
        if slip:
            info = tarfile.TarInfo("../../escaped-by-tar-slip")
            info.size = 3
            tar.addfile(info, io.BytesIO(b"pwn"))
    return gzip.compress(raw.getvalue(), mtime=0)


def _desc(media_type: str, data: bytes) -> dict[str, object]:
    return {
        "mediaType": media_type,
        "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
        "size": len(data),
    }


def push(
    registry: Registry,
    name: str,
    tag: str,
    *,
    message: str = GREETING,
    slip: bool = False,
    config: dict[str, object] | None = None,
) -> ImageReference:
    """Push a busybox image whose command echoes ``message`` (its config updated with ``config``,
    e.g. ``Env``/``User``); returns the digest-pinned ref."""
    ref = parse_reference(f"{registry.host}/{name}:{tag}")
    blob = _layer({"etc/message": message.encode()}, slip=slip)
    diff_id = "sha256:" + hashlib.sha256(gzip.decompress(blob)).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Entrypoint": ["/bin/busybox"], "Cmd": ["echo", message], **(config or {})},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        },
        sort_keys=True,
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": _desc(CONFIG, config),
            "layers": [_desc(LAYER, blob)],
        }
    ).encode()
    with RegistryClient(plain_http=(registry.host,)) as client:
        client.push_blob(ref, blob)
        client.push_blob(ref, config)
        digest = client.push_manifest(ref, manifest, OCI_MANIFEST, tag)
    return ref.with_digest(digest)


def new_key(path: Path) -> bytes:
    """A fresh P-256 key: the private PEM is returned, the public PEM written to ``path``."""
    key = ec.generate_private_key(ec.SECP256R1())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def sign(registry: Registry, pinned: ImageReference, private_pem: bytes) -> None:
    with RegistryClient(plain_http=(registry.host,)) as client:
        push_signature(client, pinned, sign_image(load_private_key(private_pem), pinned))


# -- the world of one test -------------------------------------------------------------------------


@dataclass(frozen=True)
class World:
    registry: Registry
    home: Path
    policy: Path
    key: bytes  # the trusted signer's private key
    other_key: bytes  # a key nobody trusts

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "STOCKADE_HOME": str(self.home)}
        return subprocess.run(
            [sys.executable, "-m", "stockade", "run", "--plain-http", self.registry.host,
             "--policy", str(self.policy), *args],
            capture_output=True, text=True, env=env, timeout=120, check=False,
        )  # fmt: skip

    def trace(self, run_id: str) -> dict[str, object]:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "STOCKADE_HOME": str(self.home)}
        r = subprocess.run(
            [sys.executable, "-m", "stockade", "trace", "--json", run_id],
            capture_output=True, text=True, env=env, timeout=60, check=True,
        )  # fmt: skip
        first = r.stdout[: r.stdout.index("\n}\n") + 2]
        doc: dict[str, object] = json.loads(first)
        return doc

    def trace_text(self, run_id: str) -> str:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "STOCKADE_HOME": str(self.home)}
        return subprocess.run(
            [sys.executable, "-m", "stockade", "trace", run_id],
            capture_output=True, text=True, env=env, timeout=60, check=True,
        ).stdout  # fmt: skip


def _policy(registry: Registry, *, require_digest: bool, server_image: str) -> str:
    return (
        "version: 1\n"
        "default: deny\n"
        f"registries: ['{registry.host}/stockade/*']\n"
        "signatures:\n"
        f"  require_digest: {'true' if require_digest else 'false'}\n"
        "  rules:\n"
        "    - name: team\n"
        "      keys: [keys/team.pub]\n"
        "servers:\n"
        "  - name: app\n"
        f"    image: {server_image}\n"
        "    verify: [team]\n"
        "  - name: unruled\n"
        f"    image: {server_image}\n"
        "  - name: netted\n"
        f"    image: {server_image}\n"
        "    verify: [team]\n"
        "    network: [api.example.com]\n"
    )


@pytest.fixture
def world(registry: Registry, tmp_path: Path) -> World:
    if os.geteuid() != 0:
        pytest.skip("RUNNER TESTS NEED ROOT (cgroups)")
    try:
        find_gvisor()
    except SandboxError as e:
        pytest.skip(f"BACKEND gvisor UNAVAILABLE: {e.what}")
    if not BUSYBOX.is_file():
        pytest.skip("BUSYBOX ABSENT: apt-get install busybox-static")
    pdir = tmp_path / "policy"
    key = new_key(pdir / "keys" / "team.pub")
    other = new_key(tmp_path / "untrusted.pub")
    policy = pdir / "policy.yaml"
    policy.write_text(
        _policy(registry, require_digest=False, server_image=f"{registry.host}/stockade/app:v1")
    )
    return World(registry, tmp_path / "home", policy, key, other)


def _refused_run_id(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode != 0, r.stdout + r.stderr
    line = next(x for x in r.stderr.splitlines() if x.endswith(" refused"))
    return line.split()[2]


def _assert_refused(w: World, r: subprocess.CompletedProcess[str], reason: str) -> None:
    run_id = _refused_run_id(r)
    assert reason in r.stderr, r.stderr
    trace = w.trace(run_id)
    run = trace["run"]
    assert isinstance(run, dict)
    assert run["status"] == "refused"
    assert reason in json.dumps(trace["events"])
    assert GREETING not in r.stdout
    log = (w.home / "audit" / "audit.jsonl").read_text()
    assert run_id in log
    assert "sandbox.refused" in log


# -- the good path -------------------------------------------------------------------------------


@pytest.mark.guarantee("image-run-signed-on-gvisor")
def test_a_signed_allowlisted_image_runs_on_gvisor_with_its_evidence_in_the_trace(
    world: World,
) -> None:
    pinned = push(world.registry, "stockade/app", "v1")
    sign(world.registry, pinned, world.key)
    r = world.run("--json", "--image", f"{world.registry.host}/stockade/app:v1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(GREETING + "\n")
    record = json.loads(r.stdout[len(GREETING) + 1 :])
    assert record["backend"] == "gvisor"
    assert record["image_digest"] == pinned.digest
    assert record["spec"]["rootfs"]
    assert record["spec"]["uid"] == 65532
    assert record["spec"]["network"]["mode"] == "none"
    trace = world.trace(record["run_id"])
    (verification,) = trace["verification"]  # type: ignore[misc]
    data = verification["data"]
    assert data["rule"] == "team"
    assert data["signer_kind"] == "key"
    assert data["key_id"]
    assert data["registry_rule"] == f"{world.registry.host}/stockade/*"
    assert data["verified_at"]
    assert "log_index" in data
    image = next(e for e in trace["events"] if e["kind"] == "image")  # type: ignore[union-attr, attr-defined]
    assert image["data"]["digest"] == pinned.digest
    text = world.trace_text(record["run_id"])
    assert pinned.digest in text
    assert "registry_rule" in text


@pytest.mark.guarantee("sandbox-image-root")
def test_the_image_runs_read_only_as_uid_65532_with_no_network(world: World) -> None:
    pinned = push(world.registry, "stockade/app", "shell")
    sign(world.registry, pinned, world.key)
    script = (
        "id -u; touch /etc/x 2>/dev/null && echo ROOT-WRITABLE; "
        "touch /tmp/ok && echo tmp-ok; ip -o link 2>/dev/null | grep -v ' lo' | grep -c . || true"
    )
    r = world.run("--image", str(pinned), "--", "/bin/busybox", "sh", "-c", script)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split()
    assert lines[0] == "65532"
    assert "ROOT-WRITABLE" not in r.stdout
    assert "tmp-ok" in lines
    assert lines[-1] == "0"  # no interface but loopback


@pytest.mark.guarantee("image-run-policy-server")
def test_a_policy_server_runs_its_own_image_by_name(world: World) -> None:
    pinned = push(world.registry, "stockade/app", "v1")
    sign(world.registry, pinned, world.key)
    r = world.run("--server", "app")
    assert r.returncode == 0, r.stderr
    assert r.stdout == GREETING + "\n"
    other = world.run("--server", "app", "--image", f"{world.registry.host}/stockade/other:v1")
    assert other.returncode != 0
    assert "not" in other.stderr
    assert "run the server's own image" in other.stderr


# -- refusals ------------------------------------------------------------------------------------


@pytest.mark.guarantee("image-reject-unsigned")
@pytest.mark.guarantee("image-run-refusal-recorded")
def test_an_unsigned_image_is_refused_and_recorded(world: World) -> None:
    pinned = push(world.registry, "stockade/unsigned", "v1")
    r = world.run("--image", str(pinned))
    _assert_refused(world, r, "signature")


@pytest.mark.guarantee("image-reject-wrong-key")
def test_an_image_signed_by_an_untrusted_key_is_refused(world: World) -> None:
    pinned = push(world.registry, "stockade/wrongkey", "v1")
    sign(world.registry, pinned, world.other_key)
    r = world.run("--image", str(pinned))
    _assert_refused(world, r, "signature")


@pytest.mark.guarantee("image-run-tampered-registry")
def test_a_manifest_tampered_with_in_the_registry_is_refused(world: World) -> None:
    pinned = push(world.registry, "stockade/tampered", "v1", message="tamper-target")
    sign(world.registry, pinned, world.key)
    assert pinned.digest is not None
    hexd = pinned.digest.split(":")[1]
    data = world.registry.storage / "docker/registry/v2/blobs/sha256" / hexd[:2] / hexd / "data"
    doc = json.loads(data.read_bytes())
    doc["annotations"] = {"evil": "1"}
    data.write_bytes(json.dumps(doc).encode())
    r = world.run("--image", str(pinned))
    _assert_refused(world, r, pinned.digest)


@pytest.mark.guarantee("image-tag-moved")
def test_a_tag_moved_after_verification_changes_nothing_and_the_new_target_is_refused(
    world: World,
) -> None:
    good = push(world.registry, "stockade/moving", "v1")
    sign(world.registry, good, world.key)
    push(world.registry, "stockade/moving", "v1", message="MOVED-TAG-IMPOSTOR")  # unsigned
    by_tag = world.run("--image", f"{world.registry.host}/stockade/moving:v1")
    _assert_refused(world, by_tag, "signature")
    assert "IMPOSTOR" not in by_tag.stdout
    by_digest = world.run("--image", str(good))
    assert by_digest.returncode == 0, by_digest.stderr
    assert by_digest.stdout == GREETING + "\n"


@pytest.mark.guarantee("image-registry-allowlist")
def test_an_image_from_a_registry_outside_the_allowlist_is_refused(world: World) -> None:
    pinned = push(world.registry, "elsewhere/app", "v1")
    sign(world.registry, pinned, world.key)
    r = world.run("--image", str(pinned))
    _assert_refused(world, r, "not allowlisted")


@pytest.mark.guarantee("image-reject-unpinned")
def test_a_tag_only_reference_is_refused_when_the_policy_requires_a_digest(world: World) -> None:
    world.policy.write_text(
        _policy(
            world.registry,
            require_digest=True,
            server_image=f"{world.registry.host}/stockade/app:v1",
        )
    )
    pinned = push(world.registry, "stockade/app", "v1")
    sign(world.registry, pinned, world.key)
    r = world.run("--image", f"{world.registry.host}/stockade/app:v1")
    _assert_refused(world, r, "tag-only reference")
    ok = world.run("--image", str(pinned))
    assert ok.returncode == 0, ok.stderr


@pytest.mark.guarantee("image-tar-slip")
def test_a_signed_image_whose_layer_escapes_its_root_is_refused(
    world: World, tmp_path: Path
) -> None:
    pinned = push(world.registry, "stockade/slip", "v1", slip=True)
    sign(world.registry, pinned, world.key)
    r = world.run("--image", str(pinned))
    _assert_refused(world, r, "escaped-by-tar-slip")
    assert not list(world.home.rglob("escaped-by-tar-slip"))


@pytest.mark.guarantee("image-server-without-rule-refused")
def test_an_image_server_with_no_signature_rule_is_refused(world: World) -> None:
    pinned = push(world.registry, "stockade/app", "v1")
    sign(world.registry, pinned, world.key)
    r = world.run("--server", "unruled")
    _assert_refused(world, r, "names no signature rule")


@pytest.mark.guarantee("sandbox-image-gvisor-only")
def test_an_image_never_runs_under_namespaces(world: World) -> None:
    pinned = push(world.registry, "stockade/app", "v1")
    sign(world.registry, pinned, world.key)
    r = world.run("--runtime", "namespaces", "--image", str(pinned))
    assert r.returncode != 0
    assert "gvisor" in r.stderr
    assert GREETING not in r.stdout


@pytest.mark.guarantee("image-run-policy-server")
def test_the_signed_image_example_policy_runs_its_server(world: World, tmp_path: Path) -> None:
    example = Path(__file__).parents[2] / "examples" / "policies" / "signed-image"
    copy = tmp_path / "example"
    shutil.copytree(example, copy)
    text = (copy / "policy.yaml").read_text().replace("127.0.0.1:5000", world.registry.host)
    (copy / "policy.yaml").write_text(text)
    private = new_key(copy / "keys" / "cosign.pub")
    pinned = push(world.registry, "stockade/hello", "v1", message="example-says-hello")
    sign(world.registry, pinned, private)
    w = World(world.registry, world.home, copy / "policy.yaml", private, world.other_key)
    r = w.run("--server", "hello")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "example-says-hello\n"


@pytest.mark.guarantee("image-run-refusal-recorded")
def test_an_image_run_without_a_policy_is_refused_and_recorded(world: World) -> None:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "STOCKADE_HOME": str(world.home)}
    r = subprocess.run(
        [sys.executable, "-m", "stockade", "run", "--image", "127.0.0.1:1/stockade/x:v1"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    _assert_refused(world, r, "an image run needs a policy")


# -- what an image's config may ask of its run -----------------------------------------------------

HOSTILE_ENV = [
    "LANG=C.UTF-8",
    "PATH=/tmp:.::/bin:/run/secrets:/../usr/bin",
    "API_TOKEN=image-baked-credential",
    "LD_PRELOAD=/tmp/evil.so",
    "HTTPS_PROXY=http://attacker.example:3128",
]


@pytest.mark.guarantee("sandbox-image-config")
def test_an_images_env_reaches_its_run_only_through_the_filters(world: World) -> None:
    pinned = push(world.registry, "stockade/envy", "v1", config={"Env": HOSTILE_ENV})
    sign(world.registry, pinned, world.key)
    r = world.run("--image", str(pinned), "--", "/bin/busybox", "env")
    assert r.returncode == 0, r.stderr
    env = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    assert env["LANG"] == "C.UTF-8"
    assert env["PATH"] == "/bin"  # only the image's own directories
    assert "image-baked-credential" not in r.stdout
    assert not {"API_TOKEN", "LD_PRELOAD", "HTTPS_PROXY"} & env.keys()


@pytest.mark.guarantee("sandbox-image-config")
@pytest.mark.parametrize("user", ["0", "root", "1000:0"])
def test_an_image_whose_config_names_root_or_a_user_name_is_refused_and_recorded(
    world: World, user: str
) -> None:
    pinned = push(world.registry, "stockade/rooted", user.replace(":", "-"), config={"User": user})
    sign(world.registry, pinned, world.key)
    r = world.run("--image", str(pinned))
    _assert_refused(world, r, "root or not numeric")


@pytest.mark.guarantee("sandbox-image-config")
def test_an_images_numeric_non_root_user_is_the_runs_uid_and_gid(world: World) -> None:
    pinned = push(world.registry, "stockade/userly", "v1", config={"User": "1000:1001"})
    sign(world.registry, pinned, world.key)
    r = world.run("--image", str(pinned), "--", "/bin/busybox", "sh", "-c", "id -u; id -g")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["1000", "1001"]


@pytest.mark.guarantee("sandbox-image-egress")
@pytest.mark.guarantee("sandbox-image-no-egress")
def test_an_image_server_whose_policy_allowlists_egress_runs_behind_its_own_proxy(
    world: World,
) -> None:
    pinned = push(world.registry, "stockade/app", "v1")
    sign(world.registry, pinned, world.key)
    # An unlisted name only: the proxy refuses it before any lookup (no address leaves loopback).
    script = "echo $HTTP_PROXY; /bin/busybox wget -q -O- http://unlisted.test/ 2>&1; echo end"
    r = world.run("--server", "netted", "--", "/bin/busybox", "sh", "-c", script)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "http://10.253.0.1:3128"
    assert "403" in r.stdout
    log = (world.home / "audit" / "audit.jsonl").read_text()
    assert "egress.blocked" in log
    assert "unlisted.test" in log
    ok = world.run("--server", "netted", "--network", "none")  # the operator's explicit choice
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == GREETING + "\n"
