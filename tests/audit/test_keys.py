"""Audit keys are created once, for a new log only, and refused when their files are unsafe."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from stockade.audit import (
    HMAC_KEY_FILE,
    PUBLIC_KEY_FILE,
    SIGNING_KEY_FILE,
    AuditLog,
    load_hmac_key,
    load_keys,
    load_or_create_keys,
    load_public_key,
)
from stockade.audit._keys import check_private_stat
from stockade.errors import AuditKeyError


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.mark.guarantee("audit-no-key-recreation")
def test_first_use_creates_private_keys_in_a_private_directory(tmp_path: Path) -> None:
    kd = tmp_path / "keys"
    keys = load_or_create_keys(kd, tmp_path / "audit.jsonl")
    assert _mode(kd) == 0o700
    for name in (HMAC_KEY_FILE, SIGNING_KEY_FILE, PUBLIC_KEY_FILE):
        assert _mode(kd / name) == 0o600
    again = load_keys(kd)
    assert again.hmac_key == keys.hmac_key
    assert again.key_id == keys.key_id
    assert load_public_key(kd / PUBLIC_KEY_FILE) == keys.public_key
    assert keys.hmac_key.hex() not in repr(keys)


@pytest.mark.guarantee("audit-no-key-recreation")
def test_an_existing_log_with_missing_keys_is_an_error_and_creates_nothing(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    kd = tmp_path / "keys"
    with AuditLog.open(log, kd) as sink:
        sink.append("x", {})
    for name in (HMAC_KEY_FILE, SIGNING_KEY_FILE, PUBLIC_KEY_FILE):
        (kd / name).unlink()
    with pytest.raises(AuditKeyError, match="refusing to create new keys"):
        AuditLog.open(log, kd)
    assert sorted(os.listdir(kd)) == []


@pytest.mark.guarantee("audit-no-key-recreation")
def test_a_half_present_key_set_is_an_error_even_without_a_log(tmp_path: Path) -> None:
    kd = tmp_path / "keys"
    load_or_create_keys(kd, tmp_path / "a.jsonl")
    (kd / SIGNING_KEY_FILE).unlink()
    with pytest.raises(AuditKeyError, match="refusing to create new keys"):
        load_or_create_keys(kd, tmp_path / "b.jsonl")
    assert not (kd / SIGNING_KEY_FILE).exists()


@pytest.mark.guarantee("audit-no-key-recreation")
@pytest.mark.parametrize("name", [HMAC_KEY_FILE, SIGNING_KEY_FILE])
def test_a_key_file_readable_by_others_is_refused(tmp_path: Path, name: str) -> None:
    kd = tmp_path / "keys"
    load_or_create_keys(kd, tmp_path / "audit.jsonl")
    (kd / name).chmod(0o644)
    with pytest.raises(AuditKeyError, match=r"0644.*expected 0600"):
        load_keys(kd)


@pytest.mark.guarantee("audit-no-key-recreation")
def test_a_key_directory_open_to_others_is_refused(tmp_path: Path) -> None:
    kd = tmp_path / "keys"
    load_or_create_keys(kd, tmp_path / "audit.jsonl")
    kd.chmod(0o755)
    with pytest.raises(AuditKeyError, match="expected 0700"):
        load_keys(kd)


@pytest.mark.guarantee("audit-no-key-recreation")
def test_a_symlinked_key_file_is_refused(tmp_path: Path) -> None:
    kd = tmp_path / "keys"
    load_or_create_keys(kd, tmp_path / "audit.jsonl")
    real = tmp_path / "elsewhere.key"
    (kd / HMAC_KEY_FILE).rename(real)
    (kd / HMAC_KEY_FILE).symlink_to(real)
    with pytest.raises(AuditKeyError, match="symlinks are refused"):
        load_keys(kd)


@pytest.mark.guarantee("audit-no-key-recreation")
def test_a_key_file_owned_by_someone_else_is_refused(tmp_path: Path) -> None:
    kd = tmp_path / "keys"
    load_or_create_keys(kd, tmp_path / "audit.jsonl")
    st = os.stat(kd / HMAC_KEY_FILE)
    with pytest.raises(AuditKeyError, match=f"owned by uid {st.st_uid}, expected uid"):
        check_private_stat(kd / HMAC_KEY_FILE, st, st.st_uid + 1, directory=False)
    if os.geteuid() == 0:  # as root we can really hand the file to another user
        os.chown(kd / HMAC_KEY_FILE, 65534, 65534)
        with pytest.raises(AuditKeyError, match="owned by uid 65534"):
            load_keys(kd)


def test_a_directory_where_a_key_file_should_be_is_refused(tmp_path: Path) -> None:
    st = os.stat(tmp_path)
    with pytest.raises(AuditKeyError, match="expected a regular file"):
        check_private_stat(tmp_path, st, st.st_uid, directory=False)


@pytest.mark.parametrize(
    ("content", "match"),
    [(b"zz\n", "not hex"), (b"abcd\n", "got 2 bytes, expected 32")],
)
def test_a_malformed_hmac_key_file_is_refused(tmp_path: Path, content: bytes, match: str) -> None:
    p = tmp_path / "k"
    p.write_bytes(content)
    p.chmod(0o600)
    with pytest.raises(AuditKeyError, match=match):
        load_hmac_key(p)


def test_a_public_key_file_that_is_not_ed25519_pem_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "pub.pem"
    p.write_text("not a key")
    with pytest.raises(AuditKeyError, match="not a PEM public key"):
        load_public_key(p)
    with pytest.raises(AuditKeyError, match="cannot read"):
        load_public_key(tmp_path / "absent.pem")
