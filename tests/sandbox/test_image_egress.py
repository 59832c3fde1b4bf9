"""An image run's allowlisted egress: a veth into a namespace that holds only the run's proxy.

Real gVisor, a real image root (busybox-static alone, nothing of the host), a real origin on the
host's loopback reached only through the proxy; everything is torn down after the run.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from stockade.errors import SandboxError
from stockade.models import NetworkProfile, Runtime, SandboxSpec
from stockade.sandbox import cgroup_root, find_gvisor, launch, reap_leftovers
from stockade.sandbox._netns import NETNS_DIR, PROXY_ADDR, NetPair, create_pair, mask_argv
from stockade.sandbox._reap import LiveRun

from .test_egress import Upstream, upstream  # noqa: F401  (the allowlisted destination)
from .test_refusal import ListSink
from .test_runner_lifecycle import _skip_unless

pytestmark = pytest.mark.gvisor

BUSYBOX = Path("/bin/busybox")
DIGEST = "sha256:" + "b" * 64

# The workload: the allowlisted name through the proxy, an unlisted name, a direct connection to
# the origin's port on the proxy's address and on its own loopback, the host's files.
SCRIPT = """
bb=/bin/busybox
$bb wget -q -O- http://allowed.test:{port}/ && echo " GOT-ALLOWED"
$bb wget -q -O- http://unlisted.test:{port}/ 2>&1 | $bb head -c 200; echo " rc-unlisted"
for target in "{proxy} {port}" "127.0.0.1 {port}" "{proxy} 22"; do
  if echo x | $bb nc -w 2 $target >/dev/null 2>&1; then echo "DIRECT-OPEN $target"; fi
done
$bb ip route | $bb grep -q default && echo "HAS-DEFAULT-ROUTE"
$bb ls /usr/bin/python3 /etc/passwd 2>/dev/null || echo "no-host-files"
"""


@pytest.fixture
def image_root(tmp_path: Path) -> Path:
    _skip_unless(Runtime.GVISOR)
    if not BUSYBOX.is_file():
        pytest.skip("BUSYBOX ABSENT: apt-get install busybox-static")
    root = tmp_path / "rootfs"
    for d in ("bin", "proc", "dev", "tmp", "etc"):
        (root / d).mkdir(parents=True)
    shutil.copy(BUSYBOX, root / "bin" / "busybox")
    return root


def _leftovers(state: Path, run_id: str) -> list[str]:
    left = [str(p) for p in NETNS_DIR.glob(f"stockade-{run_id}-*")]
    r = subprocess.run(
        [find_gvisor().runsc, f"--root={state / 'runsc'}", "list", "-q"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    left += [f"container {c}" for c in r.stdout.split() if run_id in c]
    left += [str(p) for p in Path("/sys/fs/cgroup").rglob(f"*{run_id}*")]
    left += [str(p) for p in (state / "live").glob("*.json")]
    return left


@pytest.mark.guarantee("sandbox-image-egress")
def test_an_image_reaches_a_listed_name_only_through_its_proxy_and_everything_is_torn_down(
    image_root: Path,
    upstream: Upstream,  # noqa: F811  (the fixture imported from test_egress)
    tmp_path: Path,
) -> None:
    sink = ListSink()
    mapping = {"allowed.test": ["127.0.0.1"], "unlisted.test": ["127.0.0.1"]}
    spec = SandboxSpec(
        argv=("/bin/busybox", "sh", "-c", SCRIPT.format(port=upstream.port, proxy=PROXY_ADDR)),
        image_digest=DIGEST,
        rootfs=str(image_root),
        network=NetworkProfile(mode="allowlist", domains=("allowed.test",)),
        timeout_s=60,
        cpu_seconds=30,
    )
    state = tmp_path / "state"
    sb = launch(
        spec, state=state, audit=sink, run_id="imgegress",
        egress_resolver=lambda h: mapping.get(h, []),
        egress_ranges=(ipaddress.ip_network("127.0.0.1/32"),),
    )  # fmt: skip
    assert sb.stdout is not None
    assert sb.stderr is not None
    out = sb.stdout.read().decode()
    err = sb.stderr.read().decode()
    sb.stdout.close()
    sb.stderr.close()
    outcome = sb.wait(60)
    assert "ok GOT-ALLOWED" in out, out + err
    assert "403" in out  # the unlisted name: refused by the proxy
    assert "DIRECT-OPEN" not in out
    assert "HAS-DEFAULT-ROUTE" not in out
    assert "no-host-files" in out
    assert len(upstream.received) == 1  # only the allowlisted request reached the origin
    blocked = [d for e, d, _ in sink.events if e == "egress.blocked"]
    allowed = [d for e, d, _ in sink.events if e == "egress.allowed"]
    assert len(allowed) == 1
    assert len(blocked) == 1
    assert "unlisted.test" in str(blocked[0])
    assert outcome.exit_code == 0, out + err
    assert outcome.cleanup_error == ""
    assert _leftovers(state, "imgegress") == []


@pytest.mark.guarantee("sandbox-image-egress")
def test_an_image_run_whose_egress_namespaces_cannot_be_built_is_refused_and_leaves_nothing(
    image_root: Path, tmp_path: Path
) -> None:
    # A namespace of that name already exists: building the pair fails, the run is refused.
    pair = NetPair.for_run("imgclash")
    subprocess.run(["ip", "netns", "add", pair.proxy], check=True, timeout=30)
    try:
        sink = ListSink()
        spec = SandboxSpec(
            argv=("/bin/busybox", "true"),
            image_digest=DIGEST,
            rootfs=str(image_root),
            network=NetworkProfile(mode="allowlist", domains=("allowed.test",)),
        )
        state = tmp_path / "state"
        with pytest.raises(SandboxError, match="egress namespaces"):
            launch(spec, state=state, audit=sink, run_id="imgclash")
        assert [e for e, _, _ in sink.events] == ["sandbox.refused"]
        assert not (NETNS_DIR / pair.workload).exists()
        assert list((state / "live").glob("*.json")) == []
    finally:
        subprocess.run(["ip", "netns", "delete", pair.proxy], check=False, timeout=30)


def test_runsc_is_masked_only_inside_its_own_mount_namespace() -> None:
    argv = mask_argv(NetPair.for_run("x"), ["/usr/bin/runsc", "run", "c"])
    assert argv[1:5] == ["--mount", "--propagation", "private", "--"]
    assert argv[-3:] == ["/usr/bin/runsc", "run", "c"]
    assert str(NETNS_DIR / "stockade-x-w") in argv


@pytest.mark.guarantee("sandbox-image-egress")
def test_the_reaper_deletes_the_egress_namespaces_of_a_run_whose_runner_died(
    tmp_path: Path,
) -> None:
    if os.geteuid() != 0:
        pytest.skip("RUNNER TESTS NEED ROOT (network namespaces)")
    pair = NetPair.for_run("imgreap")
    listener = create_pair(pair)
    listener.close()
    dead = subprocess.Popen(["/bin/true"])
    dead.wait(timeout=30)
    LiveRun(
        run_id="imgreap", backend="gvisor", container_id="stockade-imgreap",
        runsc_root=str(tmp_path / "runsc"), cgroup_root=str(cgroup_root()),
        run_dir="", secrets_dir="", runner_pid=dead.pid, runner_start="1",
        netns=f"{pair.workload} {pair.proxy}",
    ).write(tmp_path)  # fmt: skip
    assert (NETNS_DIR / pair.workload).exists()
    assert reap_leftovers(tmp_path, None, None) == ["imgreap"]
    assert not (NETNS_DIR / pair.workload).exists()
    assert not (NETNS_DIR / pair.proxy).exists()
