"""Adapter: the audit key files.

A key directory (mode 0700, owned by the current user) holds:

- ``audit-hmac.key``: 32 random bytes as 64 hex digits and a newline (mode 0600);
- ``audit-signing.key``: the Ed25519 private key, PKCS#8 PEM, unencrypted (mode 0600);
- ``audit-signing.pub``: its public key, SubjectPublicKeyInfo PEM (mode 0600; hand it out).

Keys are created on first use only when the log does not exist yet. A log that exists with its
keys missing is an :class:`~stockade.errors.AuditKeyError`: new keys would make an old log
unverifiable, or let a forger start afresh. Key files that are symlinks, not regular files, not
owned by the current user, or readable/writable by group or others are refused.
"""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

from stockade.errors import AuditKeyError

from ._checkpoint import key_id
from ._files import fsync_dir

__all__ = [
    "HMAC_KEY_FILE",
    "PUBLIC_KEY_FILE",
    "SIGNING_KEY_FILE",
    "AuditKeys",
    "check_private_stat",
    "load_hmac_key",
    "load_keys",
    "load_or_create_keys",
    "load_public_key",
]

HMAC_KEY_FILE = "audit-hmac.key"
SIGNING_KEY_FILE = "audit-signing.key"
PUBLIC_KEY_FILE = "audit-signing.pub"
_MAX_KEY_FILE = 64 * 1024


@dataclass(frozen=True, repr=False)
class AuditKeys:
    """The operator's audit keys (``repr`` never shows them)."""

    hmac_key: bytes
    signing_key: Ed25519PrivateKey

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.signing_key.public_key()

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)

    def public_pem(self) -> bytes:
        return self.public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)

    def __repr__(self) -> str:
        return f"AuditKeys(key_id={self.key_id!r})"


def check_private_stat(path: Path, st: os.stat_result, euid: int, *, directory: bool) -> None:
    """Refuse a key file/directory of the wrong type, owner or mode (pure: takes the stat)."""
    kind = "directory" if directory else "regular file"
    ok_type = stat.S_ISDIR(st.st_mode) if directory else stat.S_ISREG(st.st_mode)
    if not ok_type:
        raise AuditKeyError(
            f"{path}: got {stat.filemode(st.st_mode)}, expected a {kind}",
            "remove it and let stockade create its keys, or restore the file",
        )
    if st.st_uid != euid:
        raise AuditKeyError(
            f"{path}: owned by uid {st.st_uid}, expected uid {euid}", f"chown {euid} {path}"
        )
    if st.st_mode & 0o077:
        want = "0700" if directory else "0600"
        raise AuditKeyError(
            f"{path}: mode {stat.S_IMODE(st.st_mode):04o} lets group/others in, expected {want}",
            f"chmod {want} {path}",
        )


def _read_private(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise
    except OSError as e:
        raise AuditKeyError(
            f"cannot open key file {path}: {e.strerror} (symlinks are refused)",
            "make it a regular file owned by you with mode 0600",
        ) from e
    try:
        check_private_stat(path, os.fstat(fd), os.geteuid(), directory=False)
        data = os.read(fd, _MAX_KEY_FILE + 1)
    finally:
        os.close(fd)
    if len(data) > _MAX_KEY_FILE:
        raise AuditKeyError(f"key file {path} is larger than {_MAX_KEY_FILE} bytes", "")
    return data


def _check_dir(key_dir: Path) -> None:
    try:
        st = os.lstat(key_dir)
    except OSError as e:
        raise AuditKeyError(f"cannot stat key directory {key_dir}: {e.strerror}", "") from e
    check_private_stat(key_dir, st, os.geteuid(), directory=True)


def load_hmac_key(path: Path) -> bytes:
    """Read an HMAC key file (64 hex digits); it must be private to the current user."""
    try:
        raw = _read_private(path)
    except FileNotFoundError as e:
        raise AuditKeyError(f"HMAC key file {path} does not exist", "give the right path") from e
    try:
        key = bytes.fromhex(raw.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError) as e:
        raise AuditKeyError(f"HMAC key file {path}: not hex", "restore the key file") from e
    if len(key) != 32:
        raise AuditKeyError(f"HMAC key file {path}: got {len(key)} bytes, expected 32", "")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Read a public key handed out of band (PEM SubjectPublicKeyInfo, Ed25519)."""
    try:
        pem = path.read_bytes()
    except OSError as e:
        raise AuditKeyError(f"cannot read public key {path}: {e.strerror}", "") from e
    try:
        key = load_pem_public_key(pem)
    except ValueError as e:
        raise AuditKeyError(f"{path}: not a PEM public key", "pass the audit public key") from e
    if not isinstance(key, Ed25519PublicKey):
        raise AuditKeyError(f"{path}: got a {type(key).__name__}, expected an Ed25519 key", "")
    return key


def load_keys(key_dir: Path) -> AuditKeys:
    """Load existing keys; raise :class:`AuditKeyError` if any is missing or unsafe."""
    _check_dir(key_dir)
    hmac_key = load_hmac_key(key_dir / HMAC_KEY_FILE)
    path = key_dir / SIGNING_KEY_FILE
    try:
        pem = _read_private(path)
    except FileNotFoundError as e:
        raise AuditKeyError(f"signing key {path} does not exist", "restore it") from e
    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as e:
        raise AuditKeyError(f"{path}: not an unencrypted PEM private key", "restore it") from e
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditKeyError(f"{path}: got a {type(key).__name__}, expected Ed25519", "")
    return AuditKeys(hmac_key=hmac_key, signing_key=key)


def _write_new(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        if os.write(fd, data) != len(data):
            raise AuditKeyError(f"short write creating {path}", "check the disk and retry")
        os.fsync(fd)
    finally:
        os.close(fd)


def load_or_create_keys(key_dir: Path, log_path: Path) -> AuditKeys:
    """Load the keys, creating them only if none exist *and* ``log_path`` does not exist.

    Call it with the log's lock held so two first users do not race.
    """
    names = (HMAC_KEY_FILE, SIGNING_KEY_FILE, PUBLIC_KEY_FILE)
    present = [n for n in names if os.path.lexists(key_dir / n)]
    if present or os.path.lexists(log_path):
        if not os.path.lexists(key_dir / HMAC_KEY_FILE) or not os.path.lexists(
            key_dir / SIGNING_KEY_FILE
        ):
            why = (
                f"the audit log {log_path} exists"
                if os.path.lexists(log_path)
                else f"some key files exist in {key_dir}: {present}"
            )
            raise AuditKeyError(
                f"audit keys missing from {key_dir} but {why}; refusing to create new keys",
                "restore the keys this log was written with (or move the old log away)",
            )
        return load_keys(key_dir)
    key_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    _check_dir(key_dir)
    signing = Ed25519PrivateKey.generate()
    keys = AuditKeys(hmac_key=secrets.token_bytes(32), signing_key=signing)
    _write_new(key_dir / HMAC_KEY_FILE, keys.hmac_key.hex().encode() + b"\n")
    _write_new(
        key_dir / SIGNING_KEY_FILE,
        signing.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()),
    )
    _write_new(key_dir / PUBLIC_KEY_FILE, keys.public_pem())
    fsync_dir(key_dir)
    return keys
