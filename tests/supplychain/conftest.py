"""A real OCI registry (Debian's docker-registry) on 127.0.0.1, started and stopped by PID."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

START_TIMEOUT = 20.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``127.0.0.1:<port>`` of a fresh registry with its own storage; stopped at teardown."""
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.skip("REGISTRY ABSENT: docker-registry is not installed (apt-get install it)")
    root = tmp_path_factory.mktemp("registry")
    port = _free_port()
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: info\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n  draintimeout: 1s\n"
    )
    proc = subprocess.Popen(
        [binary, "serve", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=root,
    )
    ready = threading.Event()
    lines: list[bytes] = []

    def drain() -> None:  # keep reading so the registry never blocks on a full pipe
        assert proc.stderr is not None
        for line in proc.stderr:
            if len(lines) < 200:
                lines.append(line)
            if b"listening on" in line:
                ready.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        if not ready.wait(START_TIMEOUT):
            raise RuntimeError(f"docker-registry did not start: {b''.join(lines[-5:])!r}")
        yield f"127.0.0.1:{port}"
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


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"
