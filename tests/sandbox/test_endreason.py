"""The end reason of a run: OOM-kill evidence beats the CPU budget; other kills stay as asked."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stockade.models import EndReason
from stockade.sandbox._endreason import end_reason

KILLS = [
    EndReason.DEADLINE,
    EndReason.CPU_LIMIT,
    EndReason.MEMORY_LIMIT,
    EndReason.KILLED_BY_OPERATOR,
    EndReason.ERROR,
]


@pytest.mark.guarantee("sandbox-end-reason-oom-over-cpu")
@pytest.mark.parametrize(
    ("asked", "oom_kills", "failcnt", "signal", "expected"),
    [
        (EndReason.CPU_LIMIT, 1, 0, 9, EndReason.MEMORY_LIMIT),  # the gVisor race
        (EndReason.CPU_LIMIT, 3, 12, 9, EndReason.MEMORY_LIMIT),
        (EndReason.CPU_LIMIT, 0, 40, 9, EndReason.CPU_LIMIT),  # pressure, no OOM kill: our kill
        (EndReason.CPU_LIMIT, 0, 0, 9, EndReason.CPU_LIMIT),
        (EndReason.DEADLINE, 1, 0, 9, EndReason.DEADLINE),
        (EndReason.KILLED_BY_OPERATOR, 1, 0, 9, EndReason.KILLED_BY_OPERATOR),
        (EndReason.ERROR, 1, 0, 9, EndReason.ERROR),
        (None, 1, 0, None, EndReason.MEMORY_LIMIT),
        (None, 0, 5, 9, EndReason.MEMORY_LIMIT),  # cgroup v1: SIGKILL at the limit
        (None, 0, 5, 15, EndReason.EXITED),
        (None, 0, 0, 9, EndReason.EXITED),
        (None, 0, 0, None, EndReason.EXITED),
    ],
)
def test_the_end_reason_table(
    asked: EndReason | None, oom_kills: int, failcnt: int, signal: int | None, expected: EndReason
) -> None:
    got = end_reason(asked, oom_kills=oom_kills, memory_failcnt=failcnt, signal=signal)
    assert got == expected


@given(
    asked=st.sampled_from(KILLS),
    oom_kills=st.integers(0, 5),
    failcnt=st.integers(0, 100),
    signal=st.one_of(st.none(), st.integers(1, 64)),
)
def test_an_oom_kill_is_never_recorded_as_the_cpu_budget_and_other_kills_are_kept(
    asked: EndReason, oom_kills: int, failcnt: int, signal: int | None
) -> None:
    got = end_reason(asked, oom_kills=oom_kills, memory_failcnt=failcnt, signal=signal)
    if oom_kills > 0 and asked in (EndReason.CPU_LIMIT, EndReason.MEMORY_LIMIT):
        assert got == EndReason.MEMORY_LIMIT
    elif asked != EndReason.CPU_LIMIT or oom_kills == 0:
        assert got == asked
    assert got != EndReason.EXITED  # a run we killed never reads as a normal exit
