"""Benchmark the policy part: decision throughput/latency and `policy check` of a large file.

Run: python bench/bench_policy.py   (prints numbers; asserts nothing)
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from stockade.models import ToolCall
from stockade.policy import DecisionContext, DecisionEngine, check_policy, load_policy

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "policies" / "everything.yaml"


def calls() -> list[ToolCall]:
    c = "local-agent"
    return [
        ToolCall(server="everything", tool="echo", arguments={"message": "hello"}, client=c),
        ToolCall(server="everything", tool="get-sum", arguments={"a": 1, "b": 2}, client=c),
        ToolCall(server="everything", tool="get-env", client=c),
        ToolCall(
            server="everything", tool="trigger-sampling-request", arguments={"p": 1}, client=c
        ),
        ToolCall(
            server="everything",
            tool="trigger-long-running-operation",
            arguments={"duration": 5, "steps": 5},
            client=c,
        ),
        ToolCall(
            server="everything",
            tool="gzip-file-as-resource",
            arguments={"data": "https://raw.githubusercontent.com/x/README.md"},
            client=c,
        ),
        ToolCall(server="everything", tool="unknownTool", client=c),
        ToolCall(server="other", tool="echo", client=c),
        ToolCall(server="everything", tool="echo", arguments={"message": 3}, client=c),
    ]


def bench_decisions(n: int) -> None:
    engine = DecisionEngine(load_policy(EXAMPLE))
    batch = calls()
    ctx = DecisionContext(now=0.0)
    latencies: list[float] = []
    start = time.perf_counter()
    for i in range(n):
        call = batch[i % len(batch)]
        ctx = ctx.model_copy(update={"now": i * 0.01})
        t0 = time.perf_counter_ns()
        _, ctx = engine.decide(call, ctx)
        latencies.append((time.perf_counter_ns() - t0) / 1000)
    total = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=100)
    print(f"decisions: {n} in {total:.2f}s = {n / total:,.0f}/s (including context updates)")
    print(f"decision latency: p50 {q[49]:.1f} us, p99 {q[98]:.1f} us, max {max(latencies):.1f} us")


def big_policy(servers: int) -> str:
    out = ["version: 1", "default: deny", "registries: [registry.example.com/team/*]", "servers:"]
    for i in range(servers):
        launch = (
            f"    image: registry.example.com/team/tool{i}@sha256:{i:064x}"
            if i % 2
            else f"    command: [node, server{i}.js]"
        )
        out += [
            f"  - name: server-{i}",
            launch,
            "    network: [api.example.com, '*.example.org']",
            "    cpu_seconds: 30",
            "    memory_mb: 512",
            "    secrets: [API_TOKEN]",
            "    env: {MODE: production}",
            "    tools:",
            "      rules:",
            "        - {tool: echo, action: allow, tier: low,",
            "           arguments: {json_schema: {type: object}, rules: {m: {max_length: 100}}}}",
            "        - {tool: 'read_*', action: allow, tier: medium,",
            "           arguments: {rules: {path: {path_under: [/data]}}}}",
            "        - {tool: '*', action: deny}",
            "        - {tool: pay, action: approve, category: financial}",
        ]
    return "\n".join(out) + "\n"


def bench_check(servers: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "policy.yaml"
        f.write_text(big_policy(servers))
        size = f.stat().st_size
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            result = check_policy(f)
            times.append(time.perf_counter() - t0)
        assert result.ok, result.errors[:3]
        print(
            f"policy check of {servers} servers ({size / 1024:.0f} KiB): "
            f"median {statistics.median(times) * 1000:.0f} ms, min {min(times) * 1000:.0f} ms "
            f"over {repeat} runs (load + validate + hash)"
        )


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    bench_decisions(n)
    bench_check(1000, 5)


if __name__ == "__main__":
    main()
