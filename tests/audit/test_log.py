"""The file sink: the AuditSink API, checkpoint cadence, fsync modes, torn tails, concurrency."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest

from stockade.audit import (
    CHECKPOINT_TYPE,
    TORN_TAIL_TYPE,
    AuditLog,
    AuditTornTailError,
    verify_file,
)
from stockade.errors import AuditError
from stockade.models import AuditSink

from ._helpers import KEYS, OTHER, StepClock, lines_of


def _open(path: Path, **kw: object) -> AuditLog:
    return AuditLog.open(path, keys=KEYS, clock=StepClock(), **kw)  # type: ignore[arg-type]


def _verify(path: Path) -> None:
    report = verify_file(path, public_key=KEYS.public_key, hmac_key=KEYS.hmac_key)
    assert report.ok, report.problem


def test_the_log_is_an_audit_sink_and_append_returns_the_event_as_written(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with _open(path) as log:
        assert isinstance(log, AuditSink)
        event = log.append("tool_call", {"tool": "x"}, run_id="r1", session_id="s1")
    first = json.loads(lines_of(path.read_bytes())[0])
    assert first == event.model_dump(mode="json")
    assert (event.seq, event.type, event.run_id, event.session_id) == (0, "tool_call", "r1", "s1")
    assert event.ts == "2026-01-02T03:04:05.001000Z"
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_a_checkpoint_is_written_every_n_events_and_at_close(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with _open(path, checkpoint_every=3) as log:
        for i in range(7):
            log.append("e", {"i": i})
    types = [json.loads(line)["type"] for line in lines_of(path.read_bytes())]
    c, e = CHECKPOINT_TYPE, "e"
    assert types == [e, e, e, c, e, e, e, c, e, c]
    _verify(path)


def test_closing_right_after_a_checkpoint_adds_no_second_one(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with _open(path, checkpoint_every=2) as log:
        log.append("e", {})
        log.append("e", {})
        assert log.checkpoint() is None
    assert len(lines_of(path.read_bytes())) == 3


def test_an_empty_log_closes_without_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _open(path).close()
    assert path.read_bytes() == b""


def test_reopening_continues_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    for _ in range(3):
        with _open(path) as log:
            log.append("e", {})
    assert [json.loads(x)["seq"] for x in lines_of(path.read_bytes())] == [0, 1, 2, 3, 4, 5]
    _verify(path)


@pytest.mark.parametrize("fsync", ["event", "batch", "never"])
def test_every_fsync_mode_writes_a_verifiable_log(tmp_path: Path, fsync: str) -> None:
    path = tmp_path / "audit.jsonl"
    with _open(path, fsync=fsync, batch_size=3) as log:
        for i in range(8):
            log.append("e", {"i": i})
    _verify(path)


@pytest.mark.parametrize("reserved", [CHECKPOINT_TYPE, TORN_TAIL_TYPE])
def test_callers_cannot_write_reserved_event_types(tmp_path: Path, reserved: str) -> None:
    with _open(tmp_path / "audit.jsonl") as log, pytest.raises(AuditError, match="reserved"):
        log.append(reserved, {})


@pytest.mark.guarantee("audit-redaction")
def test_secrets_given_at_open_or_later_are_redacted_from_data_and_ids(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with _open(path, secrets={"open-secret-1"}) as log:
        log.add_secrets({"later-secret-2"})
        log.append("e", {"a": "open-secret-1", "later-secret-2": 1}, run_id="r-later-secret-2")
    text = path.read_text()
    assert "open-secret-1" not in text
    assert "later-secret-2" not in text
    assert "[REDACTED:secret]" in text


def test_a_naive_clock_is_refused(tmp_path: Path) -> None:
    class Naive:
        def now(self) -> datetime:
            return datetime(2026, 1, 1)  # deliberately naive

    log = AuditLog.open(tmp_path / "a.jsonl", keys=KEYS, clock=Naive())
    with pytest.raises(AuditError, match="naive"):
        log.append("e", {})
    log.close(checkpoint=False)


def test_open_needs_exactly_one_source_of_keys(tmp_path: Path) -> None:
    with pytest.raises(AuditError, match="exactly one"):
        AuditLog.open(tmp_path / "a.jsonl")
    with pytest.raises(AuditError, match="exactly one"):
        AuditLog.open(tmp_path / "a.jsonl", tmp_path / "keys", keys=KEYS)


def test_appending_to_a_closed_log_is_refused(tmp_path: Path) -> None:
    log = _open(tmp_path / "a.jsonl")
    log.close()
    with pytest.raises(AuditError, match="closed"):
        log.append("e", {})


def test_appending_with_the_wrong_hmac_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    with _open(path) as log:
        log.append("e", {})
    other = AuditLog.open(path, keys=OTHER)
    with pytest.raises(AuditError, match="fails its MAC"):
        other.append("e", {})
    with pytest.raises(AuditError, match="fails its MAC"):
        other.close()  # closing would write a checkpoint: refused too, files still released


def test_appending_after_a_forged_last_line_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    with _open(path) as log:
        log.append("e", {})
    path.write_bytes(path.read_bytes() + b'{"not": "an event"}\n')
    log = _open(path)
    with pytest.raises(AuditError, match="not a valid audit event"):
        log.append("e", {})
    log.close(checkpoint=False)


@pytest.mark.guarantee("audit-torn-line-reported")
def test_after_a_torn_line_appends_refuse_until_repair_records_it(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with _open(path) as log:
        log.append("e", {"i": 0})
    whole = path.read_bytes()
    torn = b'{"data":{"i":1},"mac":"hmac-sha256:00'
    path.write_bytes(whole + torn)  # a crash cut this write short
    log = _open(path)
    with pytest.raises(AuditTornTailError, match="torn"):
        log.append("e", {"i": 1})
    with pytest.raises(AuditTornTailError):
        log.checkpoint()
    assert path.read_bytes() == whole + torn  # refusing changed nothing
    event = log.repair_torn_tail()
    assert event is not None
    assert event.type == TORN_TAIL_TYPE
    assert event.data["bytes"] == len(torn)
    assert (tmp_path / event.data["saved_to"]).read_bytes() == torn
    assert log.repair_torn_tail() is None
    log.append("e", {"i": 2})
    log.close()
    _verify(path)


def test_a_log_whose_only_line_is_torn_can_be_repaired(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b'{"seq":0,')
    with _open(path) as log:
        event = log.repair_torn_tail()
    assert event is not None
    assert event.seq == 0
    _verify(path)


def test_threads_sharing_one_log_do_not_interleave(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with _open(path, fsync="never", checkpoint_every=5) as log:

        def work(t: int) -> None:
            for i in range(25):
                log.append("e", {"t": t, "i": i})

        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=60)
            assert not th.is_alive()
    report = verify_file(path, public_key=KEYS.public_key, hmac_key=KEYS.hmac_key)
    assert report.ok, report.problem
    assert report.events == 100


WRITER = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[4])
from tests.audit._helpers import KEYS
from stockade.audit import AuditLog
path, who, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
with AuditLog.open(path, keys=KEYS, checkpoint_every=7, fsync="batch", batch_size=10) as log:
    for i in range(n):
        log.append("proc", {"who": who, "i": i}, run_id=who)
"""


@pytest.mark.guarantee("audit-concurrent-appends")
def test_several_processes_appending_at_once_leave_one_intact_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    root = str(Path(__file__).resolve().parents[2])
    n, procs = 60, 5
    children = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), f"p{k}", str(n), root])
        for k in range(procs)
    ]
    try:
        for child in children:
            assert child.wait(timeout=120) == 0
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait(timeout=10)
    report = verify_file(path, public_key=KEYS.public_key, hmac_key=KEYS.hmac_key)
    assert report.ok, report.problem
    assert report.events == n * procs
    assert report.unsealed == 0
    seen = sorted(
        (e["data"]["who"], e["data"]["i"])
        for e in map(json.loads, lines_of(path.read_bytes()))
        if e["type"] == "proc"
    )
    assert seen == sorted((f"p{k}", i) for k in range(procs) for i in range(n))


def test_a_log_moved_away_while_open_continues_in_a_new_file_at_the_path(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = _open(path)
    log.append("e", {"n": 1})
    path.rename(tmp_path / "audit.jsonl.1")  # rotation by the operator
    log.append("e", {"n": 2})
    log.close()
    _verify(tmp_path / "audit.jsonl.1")
    _verify(path)
    assert json.loads(lines_of(path.read_bytes())[0])["seq"] == 0


def test_an_io_failure_surfaces_as_an_audit_error(tmp_path: Path) -> None:
    log = _open(tmp_path / "audit.jsonl")
    log.append("e", {})
    os.close(log._fd)  # the descriptor goes bad underneath the sink
    log._fd = os.open(tmp_path / "ro", os.O_RDONLY | os.O_CREAT, 0o600)
    os.link(tmp_path / "ro", tmp_path / "audit2.jsonl")
    log.path = tmp_path / "audit2.jsonl"
    with pytest.raises(AuditError, match="I/O failed"):
        log.append("e", {})
    log.close(checkpoint=False)


def test_a_log_used_in_a_forked_child_refuses(tmp_path: Path) -> None:
    log = _open(tmp_path / "audit.jsonl")
    pid = os.fork()
    if pid == 0:  # the child
        try:
            log.append("e", {})
        except AuditError:
            os._exit(0)
        os._exit(1)
    deadline = time.monotonic() + 30
    while (done := os.waitpid(pid, os.WNOHANG)) == (0, 0):
        assert time.monotonic() < deadline, "child did not exit"
        time.sleep(0.01)
    assert os.waitstatus_to_exitcode(done[1]) == 0
    log.close()


KILLED_WRITER = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from tests.audit._helpers import KEYS
from stockade.audit import AuditLog
log = AuditLog.open(Path(sys.argv[1]), keys=KEYS, checkpoint_every=5, fsync="never")
i = 0
while True:
    log.append("spin", {"i": i, "pad": "x" * 2000})
    i += 1
    if i == 20:
        print("ready", flush=True)
"""


@pytest.mark.guarantee("audit-crash-leaves-verifiable-log")
def test_a_writer_killed_mid_stream_leaves_a_log_that_verifies_and_accepts_appends(
    tmp_path: Path,
) -> None:
    path = tmp_path / "audit.jsonl"
    root = str(Path(__file__).resolve().parents[2])
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(path), root], stdout=subprocess.PIPE
    )
    try:
        assert child.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(child.stdout, selectors.EVENT_READ)
            assert sel.select(timeout=60), "writer never became ready"
        assert child.stdout.readline() == b"ready\n"
        child.kill()  # SIGKILL while it is appending as fast as it can
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=10)
        if child.stdout is not None:
            child.stdout.close()
    report = verify_file(path, public_key=KEYS.public_key, hmac_key=KEYS.hmac_key)
    assert report.ok, report.problem  # one write(2) per line: a kill never tears a line
    assert report.events >= 20
    with _open(path) as log:
        log.append("after", {})
    _verify(path)
