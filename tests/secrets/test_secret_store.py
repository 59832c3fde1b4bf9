"""The directory secret store refuses unsafe permissions, owners, symlinks and names."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stockade.errors import SecretStoreError
from stockade.secrets import (
    DirectorySecretStore,
    MemorySecretStore,
    SecretStore,
    is_secret_name,
    validate_secret_name,
    values_for_redaction,
)

VALUE = b"s3cr3t-value-\x00-never-shown"


@pytest.fixture
def store(tmp_path: Path) -> DirectorySecretStore:
    return DirectorySecretStore.create(tmp_path / "secrets")


def test_created_store_is_a_0700_directory_and_round_trips_a_value(
    store: DirectorySecretStore,
) -> None:
    store.put("GITHUB_TOKEN", VALUE)
    assert oct(store.path.stat().st_mode & 0o777) == oct(0o700)
    assert oct((store.path / "GITHUB_TOKEN").stat().st_mode & 0o777) == oct(0o400)
    assert store.get("GITHUB_TOKEN") == VALUE
    assert store.names() == ("GITHUB_TOKEN",)
    assert "GITHUB_TOKEN" in store
    assert "OTHER" not in store


def test_put_replaces_an_existing_value_atomically(store: DirectorySecretStore) -> None:
    store.put("a", b"one")
    store.put("a", b"two")
    assert store.get("a") == b"two"
    assert store.names() == ("a",)


def test_delete_removes_and_missing_secret_is_an_error_naming_it(
    store: DirectorySecretStore,
) -> None:
    store.put("a", b"x")
    store.delete("a")
    with pytest.raises(SecretStoreError, match="'a' is not in the store"):
        store.get("a")
    with pytest.raises(SecretStoreError):
        store.delete("a")


@pytest.mark.guarantee("secret-store-perms")
@pytest.mark.parametrize("mode", [0o750, 0o705, 0o777, 0o710])
def test_a_directory_looser_than_0700_is_refused(store: DirectorySecretStore, mode: int) -> None:
    store.put("a", b"x")
    os.chmod(store.path, mode)
    with pytest.raises(SecretStoreError, match="expected 0700"):
        store.get("a")
    with pytest.raises(SecretStoreError):
        store.names()


@pytest.mark.guarantee("secret-store-perms")
@pytest.mark.parametrize("mode", [0o600, 0o440, 0o404, 0o644, 0o4400])
def test_a_file_looser_than_0400_is_refused(store: DirectorySecretStore, mode: int) -> None:
    store.put("a", VALUE)
    os.chmod(store.path / "a", mode)
    with pytest.raises(SecretStoreError, match="expected 0400") as e:
        store.get("a")
    assert VALUE.decode(errors="ignore")[:6] not in str(e.value)


@pytest.mark.guarantee("secret-store-perms")
def test_a_symlinked_secret_file_is_refused_even_to_a_safe_target(
    store: DirectorySecretStore, tmp_path: Path
) -> None:
    target = tmp_path / "elsewhere"
    target.write_bytes(b"outside")
    target.chmod(0o400)
    (store.path / "link").symlink_to(target)
    with pytest.raises(SecretStoreError, match="symlink"):
        store.get("link")


@pytest.mark.guarantee("secret-store-perms")
def test_a_symlinked_store_directory_is_refused(tmp_path: Path) -> None:
    real = DirectorySecretStore.create(tmp_path / "real")
    real.put("a", b"x")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(SecretStoreError, match="symlink"):
        DirectorySecretStore(tmp_path / "link").get("a")


@pytest.mark.guarantee("secret-store-perms")
def test_a_non_regular_secret_is_refused(store: DirectorySecretStore) -> None:
    os.mkdir(store.path / "adir", 0o400)
    with pytest.raises(SecretStoreError, match="not a regular file"):
        store.get("adir")
    os.mkfifo(store.path / "fifo", 0o400)
    with pytest.raises(SecretStoreError, match="not a regular file"):
        store.get("fifo")


@pytest.mark.guarantee("secret-store-perms")
def test_files_and_directories_owned_by_another_user_are_refused(
    store: DirectorySecretStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Changing ownership needs root; instead present the store to a different effective uid.
    store.put("a", b"x")
    real = os.geteuid()
    monkeypatch.setattr(os, "geteuid", lambda: real + 1)
    with pytest.raises(SecretStoreError, match=f"owned by uid {real}, expected uid {real + 1}"):
        store.get("a")


def test_a_missing_store_directory_is_an_error_with_a_fix(tmp_path: Path) -> None:
    with pytest.raises(SecretStoreError, match="does not exist") as e:
        DirectorySecretStore(tmp_path / "nope").get("a")
    assert "mkdir -m 0700" in e.value.fix


def test_an_oversized_value_is_refused(store: DirectorySecretStore) -> None:
    with pytest.raises(SecretStoreError, match="cap"):
        store.put("big", b"x" * (1024 * 1024 + 1))


@pytest.mark.guarantee("secret-store-names")
@pytest.mark.parametrize(
    "name",
    ["", ".hidden", "../etc/passwd", "a/b", "a\\b", "a..b", "1abc", "a b", "a\x00", "é", "x" * 129],
)
def test_invalid_secret_names_are_refused_by_every_store(
    store: DirectorySecretStore, name: str
) -> None:
    assert not is_secret_name(name)
    for s in (store, MemorySecretStore()):
        with pytest.raises(SecretStoreError, match="invalid secret name"):
            s.put(name, b"x")
        with pytest.raises(SecretStoreError, match="invalid secret name"):
            s.get(name)
    assert name not in store


@pytest.mark.guarantee("secret-store-names")
def test_stray_files_with_invalid_names_are_not_listed(store: DirectorySecretStore) -> None:
    fd = os.open(store.path / ".tmp-x", os.O_CREAT | os.O_WRONLY, 0o400)
    os.close(fd)
    store.put("ok.name-1", b"x")
    assert store.names() == ("ok.name-1",)


@pytest.mark.parametrize("name", ["GITHUB_TOKEN", "github.token", "a", "A-b_c.d"])
def test_valid_names_are_accepted(name: str) -> None:
    assert validate_secret_name(name) == name


@pytest.mark.guarantee("secret-store-no-leak")
def test_values_never_appear_in_repr_or_errors(store: DirectorySecretStore) -> None:
    mem = MemorySecretStore({"tok": VALUE})
    store.put("tok", VALUE)
    for s in (store, mem):
        assert "s3cr3t" not in repr(s)
    os.chmod(store.path / "tok", 0o644)
    with pytest.raises(SecretStoreError) as e:
        store.get("tok")
    assert "s3cr3t" not in str(e.value)
    with pytest.raises(SecretStoreError) as e2:
        mem.put("tok", "s3cr3t-as-str")  # type: ignore[arg-type]
    assert "s3cr3t" not in str(e2.value)


def test_both_stores_satisfy_the_protocol_and_feed_the_redactor(
    store: DirectorySecretStore,
) -> None:
    store.put("a", b"alpha")
    mem = MemorySecretStore({"a": b"alpha", "b": b""})
    for s in (store, mem):
        assert isinstance(s, SecretStore)
        assert values_for_redaction(s, ["a", "b", "missing"]) == (b"alpha",)


def test_redaction_fails_closed_on_an_unsafe_store(store: DirectorySecretStore) -> None:
    store.put("a", b"alpha")
    os.chmod(store.path / "a", 0o644)
    with pytest.raises(SecretStoreError):
        values_for_redaction(store, ["a"])


@pytest.mark.guarantee("secret-store-no-leak")
def test_the_policy_names_the_secrets_the_redactor_fetches_from_the_store(
    tmp_path: Path,
) -> None:
    from stockade.policy import load_policy

    store = DirectorySecretStore.create(tmp_path / "secrets")
    store.put("API_TOKEN", b"tok-123")
    store.put("UNGRANTED", b"other")
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(
        "version: 1\ndefault: deny\nsecret_store: secrets\nservers:\n"
        "  - {name: s, command: [x], secrets: [API_TOKEN, MISSING]}\n"
    )
    policy = load_policy(policy_file)
    assert policy.secret_store_path == str((tmp_path / "secrets").resolve())
    assert "tok-123" not in policy.model_dump_json()
    store_from_policy = DirectorySecretStore(policy.secret_store_path)
    assert values_for_redaction(store_from_policy, policy.sensitive_secrets()) == (b"tok-123",)
