"""Layers unpack into a rootfs no entry can escape; whiteouts apply; unsafe bits are dropped."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from stockade.supplychain import RegistryError, unpack_layer

TAR = "application/vnd.oci.image.layer.v1.tar"


def entry(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", **kw: object) -> tuple:  # type: ignore[type-arg]
    return (name, kind, data, kw)


def build(*entries: tuple) -> io.BytesIO:  # type: ignore[type-arg]
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, data, kw in entries:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.mode = int(kw.get("mode", 0o644))  # type: ignore[call-overload]
            info.linkname = str(kw.get("link", ""))
            if kind == tarfile.REGTYPE:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    raw.seek(0)
    return raw


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "rootfs"


def test_regular_files_directories_and_inside_links_unpack(root: Path) -> None:
    unpack_layer(
        build(
            entry("etc/", tarfile.DIRTYPE, mode=0o755),
            entry("etc/hostname", data=b"box\n"),
            entry("etc/alias", tarfile.SYMTYPE, link="hostname"),
            entry("etc/abs", tarfile.SYMTYPE, link="/etc/hostname"),
            entry("etc/hard", tarfile.LNKTYPE, link="etc/hostname"),
        ),
        TAR,
        root,
    )
    assert (root / "etc" / "hostname").read_bytes() == b"box\n"
    assert os.readlink(root / "etc" / "alias") == "hostname"
    assert (root / "etc" / "hard").stat().st_ino == (root / "etc" / "hostname").stat().st_ino


@pytest.mark.guarantee("image-tar-slip")
@pytest.mark.parametrize(
    ("entries", "reason"),
    [
        ([entry("../evil", data=b"x")], "'..'"),
        ([entry("a/../../evil", data=b"x")], "'..'"),
        ([entry("/etc/passwd", data=b"x")], "absolute"),
        ([entry("up", tarfile.SYMTYPE, link="../../../etc")], "leaves the rootfs"),
        ([entry("a/b", tarfile.SYMTYPE, link="../../x")], "leaves the rootfs"),
        (
            [entry("link", tarfile.SYMTYPE, link="/"), entry("link/etc/passwd", data=b"x")],
            "not a real directory",
        ),
        (
            [entry("link", tarfile.SYMTYPE, link="."), entry("link/x", data=b"x")],
            "not a real directory",
        ),
        ([entry("h", tarfile.LNKTYPE, link="../../etc/passwd")], "'..'"),
        ([entry("h", tarfile.LNKTYPE, link="missing")], "missing"),
        ([entry("dev/sda", tarfile.BLKTYPE)], "device node"),
        ([entry("dev/null", tarfile.CHRTYPE)], "device node"),
        ([entry("fifo", tarfile.FIFOTYPE)], "FIFO"),
    ],
)
def test_entries_that_would_escape_or_are_unsafe_refuse_the_layer(
    entries: list[tuple],  # type: ignore[type-arg]
    reason: str,
    root: Path,
    tmp_path: Path,
) -> None:
    with pytest.raises(RegistryError, match="refused") as err:
        unpack_layer(build(*entries), TAR, root)
    assert reason in err.value.what
    assert not (tmp_path / "evil").exists()


@pytest.mark.guarantee("image-tar-slip")
def test_setuid_and_setgid_bits_are_stripped(root: Path) -> None:
    unpack_layer(build(entry("bin/su", data=b"x", mode=0o6755)), TAR, root)
    mode = (root / "bin" / "su").stat().st_mode
    assert not mode & (stat.S_ISUID | stat.S_ISGID)
    assert mode & 0o777 == 0o755


def test_whiteouts_delete_lower_layer_files_and_opaque_dirs_empty_them(root: Path) -> None:
    unpack_layer(
        build(
            entry("a/keep", data=b"1"),
            entry("a/gone", data=b"2"),
            entry("b/x", data=b"3"),
            entry("b/y", data=b"4"),
        ),
        TAR,
        root,
    )
    unpack_layer(
        build(entry("a/.wh.gone"), entry("b/.wh..wh..opq"), entry("b/z", data=b"5")), TAR, root
    )
    assert sorted(p.name for p in (root / "a").iterdir()) == ["keep"]
    assert sorted(p.name for p in (root / "b").iterdir()) == ["z"]


def test_unknown_layer_media_types_and_garbage_are_refused(root: Path) -> None:
    with pytest.raises(RegistryError, match="not supported"):
        unpack_layer(io.BytesIO(b""), "application/vnd.oci.image.layer.v1.tar+zstd", root)
    with pytest.raises(RegistryError, match="not a readable tar"):
        unpack_layer(io.BytesIO(b"garbage" * 100), TAR + "+gzip", root)
