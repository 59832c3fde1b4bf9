"""Unpack verified image layers into a rootfs; no entry may escape it (tar-slip defence).

Rules, each refusing the whole image with the entry named:

- names are relative, without ``..`` components, NUL bytes or empty parts;
- nothing is ever written through a symbolic link: every parent of an entry must be a real
  directory inside the rootfs;
- symbolic links may point anywhere *inside* the rootfs: an absolute target is read from the
  rootfs (as the container sees it), a relative one must not climb out of it;
- hard links must name an existing regular file already unpacked inside the rootfs;
- device nodes and FIFOs are refused; setuid, setgid bits are stripped; ownership is not kept;
- OCI whiteouts (``.wh.NAME`` deletes NAME, ``.wh..wh..opq`` empties the directory) apply to the
  lower layers only;
- entry count, file size and total size are capped.
"""

from __future__ import annotations

import gzip
import os
import posixpath
import shutil
import stat
import tarfile
from pathlib import Path
from typing import IO

from ._errors import RegistryError

__all__ = ["LAYER_MEDIA_TYPES", "UnpackLimits", "unpack_layer"]

LAYER_MEDIA_TYPES = {
    "application/vnd.oci.image.layer.v1.tar": "tar",
    "application/vnd.oci.image.layer.v1.tar+gzip": "gzip",
    "application/vnd.docker.image.rootfs.diff.tar.gzip": "gzip",
}
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


class UnpackLimits:
    def __init__(
        self,
        max_entries: int = 200_000,
        max_file: int = 2 * 1024**3,
        max_total: int = 8 * 1024**3,
    ) -> None:
        self.max_entries = max_entries
        self.max_file = max_file
        self.max_total = max_total


def _refuse(name: str, why: str) -> RegistryError:
    shown = name.encode("unicode_escape").decode()[:200]
    return RegistryError(
        f"layer entry {shown!r} refused: {why}",
        "this image tries to write outside its rootfs or carries unsafe files; do not run it",
    )


def _clean(name: str) -> str:
    if "\x00" in name:
        raise _refuse(name, "got a NUL byte, expected a plain path")
    stripped = name.removeprefix("./")
    if stripped.startswith("/"):
        raise _refuse(name, "got an absolute path, expected a path relative to the rootfs")
    parts = [p for p in stripped.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise _refuse(name, "got a '..' component, expected a path inside the rootfs")
    if not parts:
        return ""
    return "/".join(parts)


def _safe_parent(root: Path, rel: str) -> Path:
    """The parent directory of ``rel`` inside ``root``, created as real directories only."""
    current = root
    for part in rel.split("/")[:-1]:
        current = current / part
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            os.mkdir(current, 0o755)
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise _refuse(rel, f"parent {part!r} is not a real directory (a link?)")
    return current


def _remove(path: Path) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _symlink_inside(rel: str, target: str) -> bool:
    if "\x00" in target:
        return False
    if target.startswith("/"):
        return True  # resolved against the rootfs by the container; checked components below
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
    return not (joined == ".." or joined.startswith("../"))


def _mode(member: tarfile.TarInfo) -> int:
    return member.mode & 0o1777  # drops setuid and setgid


def unpack_layer(
    blob: IO[bytes], media_type: str, root: Path, limits: UnpackLimits | None = None
) -> int:
    """Apply one layer (a file object over its blob) to ``root``; returns the bytes written."""
    limits = limits or UnpackLimits()
    kind = LAYER_MEDIA_TYPES.get(media_type)
    if kind is None:
        raise RegistryError(
            f"layer media type {media_type[:80]!r} is not supported: expected tar or tar+gzip",
            "rebuild the image with gzip layers",
        )
    stream: IO[bytes] = gzip.GzipFile(fileobj=blob) if kind == "gzip" else blob  # type: ignore[assignment]
    total = 0
    count = 0
    root.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                count += 1
                if count > limits.max_entries:
                    raise _refuse(member.name, f"more than {limits.max_entries} entries")
                total += _apply(tar, member, root, limits)
                if total > limits.max_total:
                    raise _refuse(member.name, f"layers exceed {limits.max_total} bytes")
    except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as e:
        raise RegistryError(
            f"layer is not a readable tar archive: {type(e).__name__}", "refuse this image"
        ) from None
    return total


def _apply(tar: tarfile.TarFile, member: tarfile.TarInfo, root: Path, limits: UnpackLimits) -> int:
    rel = _clean(member.name)
    if not rel:
        return 0
    base = posixpath.basename(rel)
    parent = _safe_parent(root, rel)
    if base == OPAQUE:
        for child in list(parent.iterdir()):
            _remove(child)
        return 0
    if base.startswith(WHITEOUT):
        target = base[len(WHITEOUT) :]
        if not target or target in (".", ".."):
            raise _refuse(member.name, "got a malformed whiteout")
        _remove(parent / target)
        return 0
    path = parent / base
    if member.isdir():
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            os.mkdir(path, 0o755)
        else:
            if not stat.S_ISDIR(st.st_mode):
                _remove(path)
                os.mkdir(path, 0o755)
        os.chmod(path, _mode(member) | 0o700)
        return 0
    if member.isreg():
        if member.size > limits.max_file:
            raise _refuse(member.name, f"file of {member.size} bytes, at most {limits.max_file}")
        _remove(path)
        src = tar.extractfile(member)
        if src is None:
            raise _refuse(member.name, "unreadable file entry")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(src, out, 1024 * 1024)
        os.chmod(path, _mode(member))
        return member.size
    if member.issym():
        if not _symlink_inside(rel, member.linkname):
            raise _refuse(member.name, f"symlink to {member.linkname[:120]!r} leaves the rootfs")
        _remove(path)
        os.symlink(member.linkname, path)
        return 0
    if member.islnk():
        link_rel = _clean(member.linkname)
        if not link_rel:
            raise _refuse(member.name, "hard link to the rootfs itself")
        source = _safe_parent(root, link_rel) / posixpath.basename(link_rel)
        try:
            st = os.lstat(source)
        except FileNotFoundError:
            raise _refuse(member.name, f"hard link to missing {link_rel!r}") from None
        if not stat.S_ISREG(st.st_mode):
            raise _refuse(member.name, f"hard link to {link_rel!r}, not a regular file")
        _remove(path)
        os.link(source, path, follow_symlinks=False)
        return 0
    what = "a device node" if member.ischr() or member.isblk() else "a FIFO or special file"
    raise _refuse(member.name, f"got {what}, expected files, directories and links only")


def unpack_image(store_root: Path, manifest_digest: str, cache: Path) -> Path:
    """The rootfs of a pulled image manifest, unpacked once per digest under ``cache``.

    Each layer blob is re-hashed from the store before use; the rootfs is built in a temporary
    directory and renamed into place, so a half-unpacked rootfs is never reused.
    """
    from ._layout import OciLayoutStore
    from ._manifest import parse_manifest

    store = OciLayoutStore(store_root)
    final = cache / manifest_digest.replace(":", "-")
    if (final / ".complete").is_file():
        return final / "rootfs"
    if not store.has_blob(manifest_digest) or not store.verify_blob(manifest_digest):
        raise RegistryError(f"manifest {manifest_digest} is not in the store intact", "pull again")
    manifest = parse_manifest(store.blob_path(manifest_digest).read_bytes())
    if manifest.is_index:
        raise RegistryError("got an index, expected a platform manifest to unpack", "")
    cache.mkdir(parents=True, exist_ok=True)
    work = cache / f".tmp-{manifest_digest.replace(':', '-')}-{os.getpid()}"
    if work.exists():
        shutil.rmtree(work)
    rootfs = work / "rootfs"
    rootfs.mkdir(parents=True)
    try:
        for layer in manifest.layers:
            if not store.verify_blob(layer.digest):
                raise RegistryError(f"layer {layer.digest} in the store does not hash", "")
            with store.blob_path(layer.digest).open("rb") as f:
                unpack_layer(f, layer.media_type, rootfs)
        (work / ".complete").write_text(manifest_digest + "\n")
        if final.exists():
            shutil.rmtree(final)
        os.replace(work, final)
    finally:
        if work.exists():
            shutil.rmtree(work)
    return final / "rootfs"
