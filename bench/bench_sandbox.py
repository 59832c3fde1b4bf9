"""Start-to-exit latency of a trivial workload: through stockade vs the bare backend, as ratios.

Run as root: ``.venv/bin/python bench/bench_sandbox.py [--runs N]``. Both sides are measured in
the same run, interleaved, so the ratio is comparable on any machine. The bare baselines are the
same runtime invoked directly with a minimal equivalent configuration (no cgroup, no seccomp
compile, no run directory): the ratio is stockade's whole cost of enforcing the spec. Then the
memory of idle sandboxes (their cgroup's usage, page cache included) and how many would fit in
the host's available memory at that rate.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from stockade.models import Runtime, SandboxSpec
from stockade.sandbox import Sandbox, WarmPool, find_bwrap, find_gvisor, host_layout, launch

WORKLOADS = {"true": ("/bin/true",), "python": ("/usr/bin/python3", "-c", "pass")}


def _time(fn: Callable[[], None], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def _stockade(runtime: Runtime, argv: tuple[str, ...], state: Path) -> Callable[[], None]:
    def go() -> None:
        sb = launch(SandboxSpec(argv=argv, runtime=runtime), state=state)
        for s in (sb.stdout, sb.stderr):
            if s is not None:
                s.read()
                s.close()
        assert sb.wait(timeout=60).exit_code == 0

    return go


def _bare_gvisor(argv: tuple[str, ...], base: Path) -> Callable[[], None]:
    rt = find_gvisor()
    bundle = base / "bare-bundle"
    (bundle / "rootfs").mkdir(parents=True)
    bundle.chmod(0o711)
    base.chmod(0o711)
    layout = host_layout()
    for link, target in layout.symlinks:
        (bundle / "rootfs" / link.lstrip("/")).symlink_to(target)
    mounts = [{"destination": "/proc", "type": "proc", "source": "proc"}]
    for p in layout.ro_binds:
        mounts.append({"destination": p, "type": "bind", "source": p, "options": ["rbind", "ro"]})
    cfg = {
        "ociVersion": "1.0.2",
        "process": {"user": {"uid": 65532, "gid": 65532}, "args": list(argv),
                    "env": ["PATH=/usr/bin:/bin"], "cwd": "/", "noNewPrivileges": True},
        "root": {"path": "rootfs", "readonly": True},
        "mounts": mounts,
        "linux": {"namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")]},
    }  # fmt: skip
    (bundle / "config.json").write_text(json.dumps(cfg))
    root = base / "bare-runsc"
    n = [0]

    def go() -> None:
        n[0] += 1
        cid = f"bench-{n[0]}"
        flags = [
            f"--root={root}",
            f"--platform={rt.platform}",
            "--network=none",
            "--ignore-cgroups",
        ]
        subprocess.run([rt.runsc, *flags, "run", "--bundle", str(bundle), cid], check=True,
                       capture_output=True)  # fmt: skip
        subprocess.run([rt.runsc, f"--root={root}", "delete", "--force", cid], check=False,
                       capture_output=True)  # fmt: skip

    return go


def _bare_bwrap(argv: tuple[str, ...]) -> Callable[[], None]:
    bwrap = find_bwrap()
    layout = host_layout()
    a = [bwrap, "--unshare-all", "--die-with-parent", "--ro-bind", "/usr", "/usr"]
    for link, target in layout.symlinks:
        a += ["--symlink", target, link]
    a += ["--proc", "/proc", "--dev", "/dev", "--", *argv]

    def go() -> None:
        subprocess.run(a, check=True, capture_output=True)

    return go


def _mem_available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def _idle_memory(runtime: Runtime, state: Path, count: int) -> tuple[float, int]:
    """Mean cgroup memory of ``count`` idle sandboxes (MiB), and how many would fit."""
    boxes = [
        launch(SandboxSpec(argv=("/bin/sleep", "60"), runtime=runtime), state=state)
        for _ in range(count)
    ]
    try:
        time.sleep(1.0)  # let each sandbox settle into idle before reading its cgroup
        used = []
        for sb in boxes:
            p = Path(f"/sys/fs/cgroup/memory/stockade/{sb.run_id}/memory.usage_in_bytes")
            used.append(int(p.read_text()))
        mean = statistics.mean(used)
        return mean / 2**20, int(_mem_available() // mean)
    finally:
        for sb in boxes:
            sb.kill()
        for sb in boxes:
            for s in (sb.stdout, sb.stderr):
                if s is not None:
                    s.read()
                    s.close()
            sb.wait(timeout=60)


def _drain(sb: Sandbox) -> None:
    if sb.stdin is not None:
        sb.stdin.close()
    for s in (sb.stdout, sb.stderr):
        if s is not None:
            s.read()
            s.close()
    assert sb.wait(timeout=60).exit_code == 0


def _pool_latency(state: Path, runs: int) -> tuple[float, float, float]:
    """(hand-out ms, pooled start-to-exit ms, cold start-to-exit ms) for /bin/true."""
    spec = SandboxSpec(argv=("/bin/true",))
    hand, pooled, cold = [], [], []
    with WarmPool(spec, state=state, size=1) as pool:
        for _ in range(runs):
            pool.fill()
            t0 = time.perf_counter()
            sb = pool.take(spec)
            hand.append(time.perf_counter() - t0)
            _drain(sb)
            pooled.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            _drain(launch(spec, state=state))
            cold.append(time.perf_counter() - t0)
    return tuple(statistics.median(x) * 1000 for x in (hand, pooled, cold))  # type: ignore[return-value]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--idle", type=int, default=5, help="idle sandboxes for the memory measure")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="stockade-bench-") as d:
        base = Path(d)
        state = base / "state"
        state.mkdir()
        print(f"{'backend':<11} {'workload':<8} {'stockade ms':>12} {'bare ms':>9} {'ratio':>6}")
        for runtime in (Runtime.GVISOR, Runtime.NAMESPACES):
            for name, argv in WORKLOADS.items():
                ours = _stockade(runtime, argv, state)
                if runtime == Runtime.GVISOR:
                    (base / name).mkdir()
                    bare = _bare_gvisor(argv, base / name)
                else:
                    bare = _bare_bwrap(argv)
                ours()
                bare()  # warm caches on both sides
                a, b = [], []
                for _ in range(args.runs):
                    a += _time(ours, 1)
                    b += _time(bare, 1)
                ma, mb = statistics.median(a) * 1000, statistics.median(b) * 1000
                print(f"{runtime.value:<11} {name:<8} {ma:>12.1f} {mb:>9.1f} {ma / mb:>6.2f}")
        hand, pooled, cold = _pool_latency(state, args.runs)
        print()
        print(f"warm pool (gvisor, /bin/true): hand-out {hand:.1f} ms, pooled start-to-exit "
              f"{pooled:.1f} ms, cold {cold:.1f} ms, ratio {pooled / cold:.2f}")  # fmt: skip
        print()
        print(f"{'backend':<11} {'idle MiB/sandbox':>17} {'idle sandboxes that fit':>24}")
        for runtime in (Runtime.GVISOR, Runtime.NAMESPACES):
            mib, fit = _idle_memory(runtime, state, args.idle)
            print(f"{runtime.value:<11} {mib:>17.1f} {fit:>24}")


if __name__ == "__main__":
    main()
