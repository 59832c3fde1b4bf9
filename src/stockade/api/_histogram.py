"""Store-derived gateway latency and blocked-egress metrics (Prometheus text, computed at scrape).

Every gateway stores, with each call's ``decision`` evidence, the call's timing from its monotonic
clock (``timing``: total, downstream, approval wait, overhead; see ``stockade.gateway._timing``).
The overhead is what the gateway itself adds: the total minus the downstream server's share and
minus the time a human took to approve. The approval wait is reported separately, for the calls
that asked a human. Blocked egress comes from the store's ``egress_blocked`` counts.
Label values: the server is the operator's configured name (bounded, escaped); the egress reason
is one of the proxy's fixed kinds, anything else ``other``; domains are never labels.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from stockade.sandbox._egress import BLOCK_KINDS
from stockade.store import RunStore

__all__ = [
    "APPROVAL_BUCKETS",
    "OVERHEAD_BUCKETS",
    "Histogram",
    "TimingSamples",
    "render_egress_blocked",
]

OVERHEAD_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
APPROVAL_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0)
_MAX_LABEL = 64


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _label(value: str) -> str:
    return _escape(value[:_MAX_LABEL])


@dataclass
class Histogram:
    """Observations per server, rendered as cumulative ``le`` buckets with ``_sum``/``_count``."""

    name: str
    help: str
    buckets: tuple[float, ...]
    _obs: dict[str, list[float]] = field(default_factory=dict)

    def observe(self, server: str, seconds: float) -> None:
        if math.isfinite(seconds) and seconds >= 0:
            self._obs.setdefault(server[:_MAX_LABEL], []).append(seconds)

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        for server in sorted(self._obs):
            values = self._obs[server]
            s = f'server="{_label(server)}"'
            for le in self.buckets:
                n = sum(1 for v in values if v <= le)
                lines.append(f'{self.name}_bucket{{{s},le="{le:g}"}} {n}')
            lines.append(f'{self.name}_bucket{{{s},le="+Inf"}} {len(values)}')
            lines.append(f"{self.name}_sum{{{s}}} {math.fsum(values):.9g}")
            lines.append(f"{self.name}_count{{{s}}} {len(values)}")
        return lines


@dataclass
class TimingSamples:
    """Collects the timing of each gateway call's decision evidence."""

    overhead: Histogram = field(
        default_factory=lambda: Histogram(
            "stockade_gateway_overhead_seconds",
            "Time a tool call spends in the gateway itself (total minus downstream and approval)",
            OVERHEAD_BUCKETS,
        )
    )
    approval: Histogram = field(
        default_factory=lambda: Histogram(
            "stockade_gateway_approval_wait_seconds",
            "Time a tool call waited for a human approval (calls that asked one)",
            APPROVAL_BUCKETS,
        )
    )

    def add(self, server: str, evidence: dict[str, Any]) -> None:
        timing = evidence.get("timing")
        if not isinstance(timing, dict):
            return
        overhead, approval = timing.get("overhead_s"), timing.get("approval_s")
        if isinstance(overhead, (int, float)) and not isinstance(overhead, bool):
            self.overhead.observe(server, float(overhead))
        if _asked_a_human(evidence) and isinstance(approval, (int, float)):
            self.approval.observe(server, float(approval))

    def render(self) -> list[str]:
        return [*self.overhead.render(), *self.approval.render()]


def _asked_a_human(evidence: dict[str, Any]) -> bool:
    if evidence.get("outcome") == "denied:approval":
        return True
    prov = evidence.get("provenance")
    return isinstance(prov, list) and any(
        isinstance(p, str) and p.startswith("approved:") for p in prov
    )


def render_egress_blocked(store: RunStore) -> list[str]:
    samples: Counter[tuple[str, str]] = Counter()
    for server, _domain, kind, count in store.egress_blocked():
        samples[(server[:_MAX_LABEL], kind if kind in BLOCK_KINDS else "other")] += count
    name = "stockade_egress_blocked_total"
    lines = [
        f"# HELP {name} Egress attempts the proxy blocked, by server and reason",
        f"# TYPE {name} counter",
    ]
    for (server, reason), n in sorted(samples.items()):
        lines.append(f'{name}{{server="{_label(server)}",reason="{_escape(reason)}"}} {n}')
    return lines
