"""A launch whose runtime or any control cannot be applied is refused, naming what is missing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from stockade.errors import SandboxError
from stockade.models import AuditEvent, Bind, Runtime, SandboxSpec
from stockade.sandbox import _runner, cgroup_v1_root, launch

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="RUNNER TESTS NEED ROOT (cgroups)")


class ListSink:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any], str | None]] = []

    def append(
        self, type: str, data: dict[str, Any], *, run_id: str | None = None,
        session_id: str | None = None,
    ) -> AuditEvent:  # fmt: skip
        self.events.append((type, data, run_id))
        return AuditEvent(seq=len(self.events), ts="t", type=type, prev="p", mac="m", data=data)


def _no_live(state: Path) -> bool:
    return not (state / "live").exists() or not any((state / "live").iterdir())


@pytest.mark.guarantee("sandbox-refuse-missing-control")
def test_a_missing_cgroup_controller_refuses_naming_it(tmp_path: Path) -> None:
    for c in ("memory", "cpu", "cpuacct"):
        (tmp_path / c).mkdir()
        (tmp_path / c / "cgroup.procs").write_text("")
    with pytest.raises(SandboxError, match="'pids' is not mounted") as e:
        cgroup_v1_root(tmp_path)
    assert "refuses" in e.value.fix


@needs_root
@pytest.mark.guarantee("sandbox-refuse-missing-control")
def test_a_refusal_is_audited_and_leaves_nothing_behind(tmp_path: Path) -> None:
    spec = SandboxSpec(argv=("/bin/true",), binds=(Bind(source="/nonexistent-x", target="/x"),))
    sink = ListSink()
    with pytest.raises(SandboxError, match="does not exist"):
        launch(spec, state=tmp_path, audit=sink)
    assert sink.events[0][0] == "sandbox.refused"
    assert _no_live(tmp_path)


@needs_root
@pytest.mark.guarantee("sandbox-refuse-missing-control")
def test_an_image_root_file_system_without_a_verified_digest_is_refused(tmp_path: Path) -> None:
    spec = SandboxSpec(argv=("/bin/true",), rootfs="/var/lib/rootfs")
    with pytest.raises(SandboxError, match="both rootfs and image_digest"):
        launch(spec, state=tmp_path)


@needs_root
@pytest.mark.guarantee("sandbox-no-host-files")
def test_a_bind_of_the_runners_own_state_is_refused(tmp_path: Path) -> None:
    spec = SandboxSpec(argv=("/bin/true",), binds=(Bind(source=str(tmp_path), target="/s"),))
    with pytest.raises(SandboxError, match="protected"):
        launch(spec, state=tmp_path / "state")
    keys = tmp_path / "keys"
    keys.mkdir()
    spec = SandboxSpec(argv=("/bin/true",), binds=(Bind(source=str(keys), target="/k"),))
    with pytest.raises(SandboxError, match="protected"):
        launch(spec, state=tmp_path / "state", protected=(str(keys),))


@needs_root
@pytest.mark.guarantee("sandbox-refuse-missing-control")
def test_a_missing_gvisor_refuses_and_never_falls_back_to_namespaces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_runsc() -> None:
        raise SandboxError("gVisor (runsc) is not installed", "apt-get install runsc")

    monkeypatch.setattr(_runner, "find_gvisor", no_runsc)
    started: list[object] = []
    monkeypatch.setattr(_runner, "prepare_bwrap", lambda *a, **k: started.append(a))
    with pytest.raises(SandboxError, match="runsc"):
        launch(SandboxSpec(argv=("/bin/true",), runtime=Runtime.GVISOR), state=tmp_path)
    assert started == []
    assert _no_live(tmp_path)


@needs_root
@pytest.mark.guarantee("sandbox-refuse-missing-control")
def test_a_bind_source_the_sandbox_uid_cannot_reach_is_refused_for_namespaces(
    tmp_path: Path,
) -> None:
    hidden = tmp_path / "private"
    hidden.mkdir(mode=0o700)
    (hidden / "data").mkdir()
    spec = SandboxSpec(
        argv=("/bin/true",),
        runtime=Runtime.NAMESPACES,
        binds=(Bind(source=str(hidden / "data"), target="/data"),),
    )
    with pytest.raises(SandboxError, match="unreachable for the sandbox uid"):
        launch(spec, state=tmp_path / "state")
    assert _no_live(tmp_path / "state")


@needs_root
@pytest.mark.guarantee("sandbox-no-host-files")
def test_a_symlink_cannot_redirect_a_bind_to_a_protected_path(tmp_path: Path) -> None:
    link = tmp_path / "innocent"
    link.symlink_to("/etc")
    spec = SandboxSpec(argv=("/bin/true",), binds=(Bind(source=str(link), target="/data"),))
    with pytest.raises(SandboxError, match="protected"):
        launch(spec, state=tmp_path / "state")
    keys = tmp_path / "keys"
    keys.mkdir()
    (tmp_path / "to-keys").symlink_to(keys)
    spec = SandboxSpec(
        argv=("/bin/true",), binds=(Bind(source=str(tmp_path / "to-keys"), target="/k"),)
    )
    with pytest.raises(SandboxError, match="protected"):
        launch(spec, state=tmp_path / "state", protected=(str(keys),))


@pytest.mark.guarantee("sandbox-no-host-files")
@pytest.mark.parametrize(
    ("source", "target"),
    [("/srv/x", "/a/../../etc"), ("/srv/../etc", "/data"), ("/srv/x", "/a//b")],
)
def test_bind_paths_with_dot_dot_or_oddities_are_refused(source: str, target: str) -> None:
    from stockade.sandbox import check_bind

    with pytest.raises(SandboxError, match="not normalised"):
        check_bind(Bind(source=source, target=target))


@needs_root
@pytest.mark.guarantee("sandbox-refuse-missing-control")
def test_a_size_cap_on_a_writable_bind_is_refused_because_it_cannot_be_enforced(
    tmp_path: Path,
) -> None:
    d = tmp_path / "out"
    d.mkdir()
    spec = SandboxSpec(
        argv=("/bin/true",), binds=(Bind(source=str(d), target="/out", mode="rw", size_mb=10),)
    )
    with pytest.raises(SandboxError, match="size cap"):
        launch(spec, state=tmp_path / "state")


@needs_root
@pytest.mark.guarantee("sandbox-refuse-missing-control")
@pytest.mark.parametrize("runtime", [Runtime.GVISOR, Runtime.NAMESPACES])
def test_a_missing_granted_secret_refuses_and_leaves_no_cgroup_or_state(
    tmp_path: Path, runtime: Runtime
) -> None:
    from stockade.sandbox import find_bwrap, find_gvisor
    from stockade.secrets import MemorySecretStore

    try:
        find_gvisor() if runtime == Runtime.GVISOR else find_bwrap()
    except SandboxError as e:
        pytest.skip(f"BACKEND {runtime.value} UNAVAILABLE: {e.what}")
    spec = SandboxSpec(argv=("/bin/true",), runtime=runtime, secrets=("absent_token",))
    with pytest.raises(SandboxError, match="absent_token"):
        launch(spec, state=tmp_path, run_id="refused-secret-run", secrets=MemorySecretStore())
    assert _no_live(tmp_path)
    assert not Path("/sys/fs/cgroup/memory/stockade/refused-secret-run").exists()
