"""Secret stores: the :class:`SecretStore` Protocol and the default directory-backed store.

Values are bytes. They never appear in ``repr``, in error messages or in logs: every message names
the secret, never its content.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable

from stockade.errors import SecretStoreError

from ._names import is_secret_name, validate_secret_name

__all__ = [
    "MAX_SECRET_BYTES",
    "DirectorySecretStore",
    "MemorySecretStore",
    "SecretStore",
    "values_for_redaction",
]

#: A secret larger than this is refused (a store is for credentials, not data).
MAX_SECRET_BYTES = 1024 * 1024

_DIR_MODE = 0o700
_FILE_MODE = 0o400
_TMP_PREFIX = ".tmp-"


@runtime_checkable
class SecretStore(Protocol):
    """Where secret values live. Policies name secrets; stores hold their values."""

    def get(self, name: str) -> bytes: ...

    def put(self, name: str, value: bytes) -> None: ...

    def delete(self, name: str) -> None: ...

    def names(self) -> tuple[str, ...]: ...

    def __contains__(self, name: object) -> bool: ...


class MemorySecretStore:
    """An in-process store (tests, embedding). Same name grammar and repr discipline."""

    def __init__(self, values: dict[str, bytes] | None = None) -> None:
        self._values: dict[str, bytes] = {}
        for name, value in (values or {}).items():
            self.put(name, value)

    def __repr__(self) -> str:
        return f"MemorySecretStore(names={list(self.names())!r})"

    def get(self, name: str) -> bytes:
        validate_secret_name(name)
        try:
            return self._values[name]
        except KeyError:
            raise SecretStoreError(
                f"secret {name!r} is not in the store", f"add it with put({name!r}, value)"
            ) from None

    def put(self, name: str, value: bytes) -> None:
        validate_secret_name(name)
        _check_value(name, value)
        self._values[name] = bytes(value)

    def delete(self, name: str) -> None:
        validate_secret_name(name)
        if self._values.pop(name, None) is None:
            raise SecretStoreError(f"secret {name!r} is not in the store", "check the name")

    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._values))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._values


class DirectorySecretStore:
    """A directory (mode 0700, owned by us) of files (mode 0400, owned by us), one per secret.

    Every access re-checks the directory and the file through file descriptors opened with
    ``O_NOFOLLOW``: a symlink, a looser mode or another owner is refused, never "fixed".
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = Path(os.path.abspath(os.fspath(path)))

    @classmethod
    def create(cls, path: str | os.PathLike[str]) -> DirectorySecretStore:
        """Create the directory with mode 0700 if missing; then check it like any other."""
        p = Path(os.path.abspath(os.fspath(path)))
        with contextlib.suppress(FileExistsError):
            os.mkdir(p, _DIR_MODE)
        store = cls(p)
        with store._dir():
            pass
        return store

    @property
    def path(self) -> Path:
        return self._path

    def __repr__(self) -> str:
        return f"DirectorySecretStore(path={str(self._path)!r})"

    # -- the directory -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _dir(self) -> Iterator[int]:
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(self._path, flags)
        except FileNotFoundError:
            raise SecretStoreError(
                f"secret store {str(self._path)!r} does not exist",
                f"create it: mkdir -m 0700 {self._path}",
            ) from None
        except OSError as e:
            raise SecretStoreError(
                f"secret store {str(self._path)!r} cannot be opened as a directory without "
                f"following symlinks ({e.strerror})",
                "point secret_store at a real directory (not a symlink) with mode 0700",
            ) from None
        try:
            st = os.fstat(fd)
            _check_owner_mode(st, _DIR_MODE, f"secret store directory {str(self._path)!r}")
            yield fd
        finally:
            os.close(fd)

    # -- reading -------------------------------------------------------------------------------

    def get(self, name: str) -> bytes:
        validate_secret_name(name)
        with self._dir() as dfd:
            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK
            try:
                fd = os.open(name, flags, dir_fd=dfd)
            except FileNotFoundError:
                raise SecretStoreError(
                    f"secret {name!r} is not in the store {str(self._path)!r}",
                    f"create {self._path}/{name} with mode 0400 (or use DirectorySecretStore.put)",
                ) from None
            except OSError as e:
                raise SecretStoreError(
                    f"secret {name!r} cannot be opened without following symlinks ({e.strerror})",
                    "replace the symlink by a regular file with mode 0400",
                ) from None
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode):
                    raise SecretStoreError(
                        f"secret {name!r} is not a regular file", "store secrets as plain files"
                    )
                _check_owner_mode(st, _FILE_MODE, f"secret file {name!r}")
                if st.st_size > MAX_SECRET_BYTES:
                    raise SecretStoreError(
                        f"secret {name!r} is {st.st_size} bytes, over the "
                        f"{MAX_SECRET_BYTES}-byte cap",
                        "store only credentials in the secret store",
                    )
                chunks: list[bytes] = []
                total = 0
                while chunk := os.read(fd, 65536):
                    total += len(chunk)
                    if total > MAX_SECRET_BYTES:
                        raise SecretStoreError(
                            f"secret {name!r} grew past the {MAX_SECRET_BYTES}-byte cap",
                            "store only credentials in the secret store",
                        )
                    chunks.append(chunk)
                return b"".join(chunks)
            finally:
                os.close(fd)

    def names(self) -> tuple[str, ...]:
        with self._dir() as dfd:
            return tuple(sorted(n for n in os.listdir(dfd) if is_secret_name(n)))

    def __contains__(self, name: object) -> bool:
        if not is_secret_name(name):
            return False
        return name in self.names()

    # -- writing -------------------------------------------------------------------------------

    def put(self, name: str, value: bytes) -> None:
        """Write ``value`` atomically (temp file, fsync, rename) as a 0400 file."""
        validate_secret_name(name)
        _check_value(name, value)
        with self._dir() as dfd:
            tmp = f"{_TMP_PREFIX}{name}-{os.getpid()}"
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            try:
                fd = os.open(tmp, flags, 0o600, dir_fd=dfd)
            except OSError as e:
                raise SecretStoreError(
                    f"cannot create a file for secret {name!r} ({e.strerror})",
                    f"remove stale {tmp!r} from the store directory, or check its permissions",
                ) from None
            try:
                view = memoryview(bytes(value))
                while view:
                    n = os.write(fd, view)
                    view = view[n:]
                os.fchmod(fd, _FILE_MODE)
                os.fsync(fd)
            except OSError as e:
                os.close(fd)
                os.unlink(tmp, dir_fd=dfd)
                raise SecretStoreError(
                    f"cannot write secret {name!r} ({e.strerror})", "check free space"
                ) from None
            os.close(fd)
            os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
            os.fsync(dfd)

    def delete(self, name: str) -> None:
        validate_secret_name(name)
        with self._dir() as dfd:
            try:
                os.unlink(name, dir_fd=dfd)
            except FileNotFoundError:
                raise SecretStoreError(
                    f"secret {name!r} is not in the store", "check the name"
                ) from None


def values_for_redaction(store: SecretStore, names: Iterable[str]) -> tuple[bytes, ...]:
    """The values of ``names`` that exist in ``store`` (for the audit redactor).

    A name missing from the store has no value that could leak, so it is skipped; any other
    failure (bad permissions, symlink) propagates: fail closed.
    """
    out: list[bytes] = []
    for name in names:
        if name in store:
            value = store.get(name)
            if value:
                out.append(value)
    return tuple(out)


def _check_value(name: str, value: bytes) -> None:
    if not isinstance(value, bytes | bytearray):
        raise SecretStoreError(
            f"secret {name!r} must be bytes, got {type(value).__name__}", "encode it first"
        )
    if len(value) > MAX_SECRET_BYTES:
        raise SecretStoreError(
            f"secret {name!r} is {len(value)} bytes, over the {MAX_SECRET_BYTES}-byte cap",
            "store only credentials in the secret store",
        )


def _check_owner_mode(st: os.stat_result, expected: int, what: str) -> None:
    uid = os.geteuid()
    if st.st_uid != uid:
        raise SecretStoreError(
            f"{what} is owned by uid {st.st_uid}, expected uid {uid} (the current user)",
            "recreate it as the user that runs stockade",
        )
    mode = stat.S_IMODE(st.st_mode)
    if mode & ~expected:
        raise SecretStoreError(
            f"{what} has mode {mode:04o}, expected {expected:04o} (no more permissive)",
            f"chmod {expected:04o} it",
        )
