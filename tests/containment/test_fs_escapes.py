"""File-system escapes: read-only root and binds, no host files outside the allowlist."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stockade.models import Bind

from .conftest import Runner

TRY_WRITE = """
import sys
for p in sys.argv[1:] or {paths!r}:
    try:
        with open(p, "a") as f:
            f.write("pwned")
        print("WROTE", p)
    except OSError as e:
        print("blocked", p, e.errno)
"""


@pytest.mark.guarantee("sandbox-readonly-root")
def test_the_root_file_system_and_system_dirs_are_read_only(run: Runner) -> None:
    paths = ["/pwned", "/usr/pwned", "/etc/passwd", "/usr/bin/python3", "/bin/pwned"]
    r = run(TRY_WRITE.format(paths=paths))
    assert "WROTE" not in r.stdout
    assert r.stdout.count("blocked") == len(paths)
    assert not Path("/pwned").exists()
    assert not Path("/usr/pwned").exists()


@pytest.mark.guarantee("sandbox-readonly-binds")
def test_a_read_only_bind_cannot_be_written(run: Runner, shared_dir: Path) -> None:
    data = shared_dir / "data"
    data.mkdir()
    (data / "keep.txt").write_text("original")
    # World-writable on the host, so only the read-only bind can stop the write.
    os.chmod(data, 0o777)  # noqa: S103
    os.chmod(data / "keep.txt", 0o666)  # noqa: S103
    binds = (Bind(source=str(data), target="/data", mode="ro"),)
    r = run(TRY_WRITE.format(paths=["/data/keep.txt", "/data/new.txt"]), binds=binds)
    assert "WROTE" not in r.stdout
    assert (data / "keep.txt").read_text() == "original"
    assert not (data / "new.txt").exists()


@pytest.mark.guarantee("sandbox-no-host-files")
def test_host_files_outside_the_allowlist_cannot_be_read(run: Runner, tmp_path: Path) -> None:
    key = tmp_path / "keys" / "operator.key"
    key.parent.mkdir()
    key.write_text("TOP-SECRET-KEY-MATERIAL")
    payload = f"""
paths = ["/etc/shadow", {str(key)!r}, "/root/.bashrc", "/work", "/home"]
for p in paths + ["/proc/1/root/etc/shadow"]:
    try:
        print("READ", p, open(p).read()[:40])
    except OSError as e:
        print("blocked", p, e.errno)
"""
    r = run(payload)
    assert "READ" not in r.stdout
    assert "TOP-SECRET" not in r.stdout + r.stderr


@pytest.mark.guarantee("sandbox-unprivileged-host-uid")
def test_files_the_sandbox_creates_belong_to_an_unprivileged_host_uid(
    run: Runner, shared_dir: Path
) -> None:
    out = shared_dir / "out"
    out.mkdir()
    os.chown(out, 65532, 65532)
    binds = (Bind(source=str(out), target="/out", mode="rw"),)
    r = run("open('/out/made', 'w').write('x'); import os; print(os.getuid())", binds=binds)
    assert r.outcome.exit_code == 0, r.stderr
    st = (out / "made").stat()
    assert st.st_uid == 65532
    assert st.st_gid == 65532
    assert st.st_uid != 0


@pytest.mark.guarantee("sandbox-tmp-cap")
def test_filling_tmp_stops_at_its_size_cap(run: Runner) -> None:
    payload = """
n = 0
try:
    with open("/tmp/fill", "wb") as f:
        for _ in range(64):
            f.write(b"x" * 1024 * 1024); f.flush(); n += 1
    print("FILLED", n)
except OSError as e:
    print("blocked after", n, "MiB", e.errno)
"""
    r = run(payload, tmp_size_mb=4)
    assert "blocked after" in r.stdout
    line = next(x for x in r.stdout.splitlines() if x.startswith("blocked after"))
    assert int(line.split()[2]) <= 4


@pytest.mark.guarantee("sandbox-readonly-binds")
def test_a_single_file_can_be_bound_read_only(run: Runner, shared_dir: Path) -> None:
    f = shared_dir / "config.json"
    f.write_text('{"k": 1}')
    f.chmod(0o644)
    binds = (Bind(source=str(f), target="/etc-app/config.json", mode="ro"),)
    r = run(
        TRY_WRITE.format(paths=["/etc-app/config.json"])
        + "\nprint(open('/etc-app/config.json').read())",
        binds=binds,
    )
    assert '{"k": 1}' in r.stdout
    assert "WROTE" not in r.stdout
    assert f.read_text() == '{"k": 1}'


@pytest.mark.guarantee("sandbox-writable-only-tmp")
def test_no_file_can_be_created_outside_tmp_and_writable_binds(run: Runner) -> None:
    payload = """
import os
for p in ["/dev/shm/x", "/dev/x", "/run/x", "/proc/x", "/x", "/etc/x", "/var/x"]:
    try:
        fd = os.open(p, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)
        print("CREATED", p)
    except OSError as e:
        print("blocked", p, e.errno)
open("/tmp/ok", "w").write("fine")
print("tmp ok")
"""
    r = run(payload)
    assert "CREATED" not in r.stdout, r.stdout
    assert "tmp ok" in r.stdout
