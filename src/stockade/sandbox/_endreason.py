"""Why a run ended, from what the monitor asked for and what the cgroup saw (pure).

The monitor may kill a run for its CPU budget while the kernel's OOM killer is killing it for
memory: under gVisor a workload thrashing its memory limit burns the Sentry's CPU too, and the
CPU counter can cross the budget before the run's death is observed. The cgroup's OOM-kill
counter is hard evidence of memory exhaustion, so it beats the CPU budget. A deadline and an
operator's stop were decided on their own (a clock, a person) and stay as asked; so does a
monitor failure (``error``).

Without a kill of ours, a run killed by SIGKILL while its memory limit was hit (``failcnt`` on
cgroup v1, which keeps no OOM-kill counter on older kernels) also counts as memory exhaustion.
"""

from __future__ import annotations

from stockade.models import EndReason

__all__ = ["end_reason"]


def end_reason(
    asked: EndReason | None, *, oom_kills: int, memory_failcnt: int, signal: int | None
) -> EndReason:
    """The end reason to record: ``asked`` is the reason of our own kill (None: no kill)."""
    if asked is None:
        oom = oom_kills > 0 or (signal == 9 and memory_failcnt > 0)
        return EndReason.MEMORY_LIMIT if oom else EndReason.EXITED
    if asked == EndReason.CPU_LIMIT and oom_kills > 0:
        return EndReason.MEMORY_LIMIT
    return asked
