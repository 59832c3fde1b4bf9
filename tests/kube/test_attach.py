"""Stdio attach pieces: the bounded stderr log (Hypothesis over its algebra), the synchronous
pump ``stockade run --backend kubernetes -i`` uses, and the WSClient adapter's contract."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stockade.kube import BoundedLog, KubeError, pump
from stockade.kube._client import WsAttach
from stockade.testing._kube import FakeAttach


@given(st.integers(1, 512), st.lists(st.binary(max_size=300), max_size=30))
def test_a_bounded_log_keeps_at_most_its_cap_and_accounts_for_every_byte(
    cap: int, chunks: list[bytes]
) -> None:
    log = BoundedLog(cap)
    for c in chunks:
        log.add(c)
    whole = b"".join(chunks)
    assert len(log) <= cap
    assert len(log) + log.dropped == log.total == len(whole)
    assert whole.endswith(bytes(log._buf))


@pytest.mark.guarantee("k8s-attach-bounded")
def test_a_bounded_log_says_what_it_dropped_and_neutralises_terminal_controls() -> None:
    log = BoundedLog(16)
    log.add(b"A" * 100 + b"\x1b]0;pwned\x07tail\x1b[2J")
    text = log.text()
    assert "\x1b" not in text
    assert "\x07" not in text
    assert text.startswith("[stockade: ")
    assert "earlier bytes dropped" in text


def test_a_bounded_log_refuses_a_zero_cap() -> None:
    with pytest.raises(ValueError, match="expected > 0"):
        BoundedLog(0)


def _line(obj: str) -> bytes:
    return obj.encode() + b"\n"


def test_pump_passes_the_callers_stdin_to_the_pod_and_the_pods_stdout_back() -> None:
    fake = FakeAttach(stderr=b"booting\n")
    req = _line('{"jsonrpc":"2.0","id":1,"method":"tools/list"}')
    out = io.BytesIO()
    reads = [0]

    def expired() -> bool:  # the server exits once it answered (bounded either way)
        reads[0] += 1
        assert reads[0] < 1000, "the pump never ended"
        if b"\n" in out.getvalue():
            fake.end()
        return False

    got = pump(fake, stdin=io.BufferedReader(io.BytesIO(req)), stdout=out, expired=expired)
    assert b'"echo"' in out.getvalue()
    assert got.stdin_bytes == len(req)
    assert got.stdout_bytes == len(out.getvalue())
    assert got.stderr == "booting\n"
    assert got.ended_by == "stream closed"
    assert fake.closed


def test_pump_turns_the_callers_eof_into_the_pods_and_ends_when_the_server_exits() -> None:
    fake = FakeAttach()
    req = _line('{"jsonrpc":"2.0","id":2,"method":"initialize","params":{}}')
    out = io.BytesIO()
    n = [0]

    def expired() -> bool:
        n[0] += 1
        return n[0] > 1000  # bounded; the server's exit on EOF ends the pump first

    got = pump(fake, stdin=io.BufferedReader(io.BytesIO(req)), stdout=out, expired=expired)
    assert fake.stdin_closed
    assert got.ended_by == "stream closed"
    assert b"fake-pod-echo" in out.getvalue()


@pytest.mark.guarantee("k8s-attach-bounded")
def test_pump_keeps_only_a_bounded_stderr_tail_of_a_flooding_pod() -> None:
    fake = FakeAttach(flood_stderr=4 << 20)
    n = [0]

    def expired() -> bool:
        n[0] += 1
        if fake.flood_stderr == 0:
            fake.end()
        return n[0] > 1000

    got = pump(fake, stdin=None, stdout=io.BytesIO(), expired=expired, stderr_cap=4096)
    assert got.stderr_dropped == (4 << 20) - 4096
    assert len(got.stderr) < 4200


@pytest.mark.guarantee("k8s-run-deadline")
def test_pump_stops_at_the_deadline_and_closes_the_stream() -> None:
    fake = FakeAttach()
    got = pump(fake, stdin=None, stdout=io.BytesIO(), expired=lambda: True)
    assert got.ended_by == "deadline"
    assert fake.closed


class _WS:
    """Stands in for the client's WSClient (binary mode): the calls WsAttach makes."""

    def __init__(self, fail: bool = False) -> None:
        self.sent: list[bytes] = []
        self.closed_channels: list[int] = []
        self.fail = fail
        self.open = True

    def close_channel(self, channel: int) -> None:
        self.closed_channels.append(channel)

    def write_stdin(self, data: bytes) -> None:
        if self.fail:
            raise OSError("broken pipe")
        self.sent.append(data)

    def read_stdout(self, timeout: float) -> bytes:
        return b"out"

    def read_stderr(self, timeout: float) -> bytes:
        return b"err"

    def peek_stdout(self) -> bytes:
        return b""

    def peek_stderr(self) -> bytes:
        return b""

    def is_open(self) -> bool:
        return self.open

    def close(self) -> None:
        self.open = False


def test_the_websocket_adapter_maps_transport_errors_to_kube_errors() -> None:
    with pytest.raises(KubeError, match="attach write failed: OSError"):
        WsAttach(_WS(fail=True)).write(b"x")


def test_the_websocket_adapter_reads_nothing_once_the_stream_is_closed() -> None:
    ws = _WS()
    a = WsAttach(ws)
    a.write(b"{}\n")
    assert ws.sent == [b"{}\n"]
    assert a.read_stdout(0.1) == b"out"
    assert a.read_stderr(0) == b"err"
    a.close_stdin()
    assert ws.closed_channels == [0]
    a.close()
    assert not a.is_open
    assert a.read_stdout(0.1) == b""
    assert a.read_stderr(0) == b""
