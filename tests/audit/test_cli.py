"""`stockade audit`: init, pubkey, append, verify, head --export, show and repair, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stockade.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = 0
    try:
        main(list(argv))
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def home(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    h = tmp_path / "home"
    code, out, _ = run(capsys, "audit", "init", "--dir", str(h))
    assert code == 0
    (tmp_path / "pub.pem").write_text(out)
    return h


def log_of(home: Path) -> Path:
    return home / "audit" / "audit.jsonl"


def test_init_creates_keys_and_a_sealed_log_and_prints_the_public_key(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pem = (home.parent / "pub.pem").read_text()
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert (home / "keys" / "audit-hmac.key").stat().st_mode & 0o777 == 0o600
    code, out, err = run(capsys, "audit", "init", "--dir", str(home))
    assert code == 0
    assert out == pem  # a second init keeps the same keys
    assert "already present" in err
    code, out, _ = run(capsys, "audit", "pubkey", "--dir", str(home))
    assert out == pem


@pytest.mark.guarantee("audit-verify-uses-outofband-key")
def test_verify_passes_with_the_exported_key_and_fails_with_another(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pub = str(tmp_path / "pub.pem")
    run(capsys, "audit", "append", "--dir", str(home), "--type", "t", "--data", '{"a": 1}')
    code, out, _ = run(capsys, "audit", "verify", str(log_of(home)), "--pubkey", pub)
    assert code == 0
    assert "HMAC skipped (no HMAC key given)" in out
    assert "OK: log intact" in out
    hk = str(home / "keys" / "audit-hmac.key")
    code, out, _ = run(
        capsys, "audit", "verify", str(log_of(home)), "--pubkey", pub, "--hmac-key", hk
    )
    assert code == 0
    assert "HMAC of every line" in out
    run(capsys, "audit", "init", "--dir", str(tmp_path / "other"))
    code, out, _ = run(
        capsys,
        "audit",
        "pubkey",
        "--dir",
        str(tmp_path / "other"),
        "--out",
        str(tmp_path / "other.pem"),
    )
    code, out, err = run(
        capsys, "audit", "verify", str(log_of(home)), "--pubkey", str(tmp_path / "other.pem")
    )
    assert code == 1
    assert "bad-signature" in out
    assert "verification failed at line 2" in err


def test_append_redacts_marked_secrets_and_credentials(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = json.dumps({"note": "pw is Tr0ub4dor&3", "Authorization": "Bearer abcdefghijkl"})
    code, out, _ = run(
        capsys,
        "audit",
        "append",
        "--dir",
        str(home),
        "--type",
        "t",
        "--data",
        data,
        "--secret",
        "Tr0ub4dor&3",
        "--run-id",
        "r1",
    )
    assert code == 0
    assert json.loads(out)["run_id"] == "r1"
    text = log_of(home).read_text()
    assert "Tr0ub4dor&3" not in text
    assert "abcdefghijkl" not in text


@pytest.mark.parametrize("data", ["not json", "[1, 2]"])
def test_append_refuses_data_that_is_not_a_json_object(
    home: Path, capsys: pytest.CaptureFixture[str], data: str
) -> None:
    code, _, err = run(capsys, "audit", "append", "--dir", str(home), "--type", "t", "--data", data)
    assert code == 2
    assert "--data" in err


@pytest.mark.guarantee("audit-tail-with-checkpoint-deleted-detected")
def test_an_exported_head_catches_a_cut_tail(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pub = str(tmp_path / "pub.pem")
    log = log_of(home)
    before = log.read_bytes()
    run(capsys, "audit", "append", "--dir", str(home), "--type", "t", "--data", "{}")
    code, out, _ = run(capsys, "audit", "head", str(log), "--export", "--dir", str(home))
    assert code == 0
    doc = json.loads(out)
    head_file = tmp_path / "head.json"
    head_file.write_text(out)
    for expect in (str(head_file), doc["id"]):
        code, _, _ = run(
            capsys, "audit", "verify", str(log), "--pubkey", pub, "--expect-head", expect
        )
        assert code == 0
    log.write_bytes(before)  # the new event and its checkpoint are gone
    code, out, _err = run(
        capsys, "audit", "verify", str(log), "--pubkey", pub, "--expect-head", str(head_file)
    )
    assert code == 1
    assert "truncated" in out
    code, out, _ = run(capsys, "audit", "head", str(log), "--dir", str(home))
    assert f"seq {doc['seq'] - 2}" in out


def test_show_neutralises_control_sequences_in_event_data(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    evil = "\x1b]0;owned\x07\x1b[31mred\u202e txt"
    run(
        capsys,
        "audit",
        "append",
        "--dir",
        str(home),
        "--type",
        "t",
        "--data",
        json.dumps({"msg": evil}),
    )
    code, out, _ = run(capsys, "audit", "show", str(log_of(home)))
    assert code == 0
    assert "\x1b" not in out
    assert "\u202e" not in out
    assert "red" in out
    code, out, _ = run(capsys, "audit", "show", str(log_of(home)), "--limit", "1")
    assert out.startswith("#3 ")


@pytest.mark.guarantee("audit-torn-line-reported")
def test_a_torn_log_refuses_appends_until_repair(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = log_of(home)
    with log.open("ab") as f:
        f.write(b'{"data":{"half":')
    code, out, _ = run(capsys, "audit", "verify", str(log), "--pubkey", str(tmp_path / "pub.pem"))
    assert code == 1
    assert "torn" in out
    code, _, err = run(capsys, "audit", "append", "--dir", str(home), "--type", "t")
    assert code == 1
    assert "torn line" in err
    code, out, _ = run(capsys, "audit", "show", str(log))
    assert "torn (no trailing newline)" in out
    code, out, _ = run(capsys, "audit", "repair", "--dir", str(home))
    assert code == 0
    assert "moved the torn fragment" in out
    code, out, _ = run(capsys, "audit", "repair", "--dir", str(home))
    assert "nothing to repair" in out
    assert run(capsys, "audit", "append", "--dir", str(home), "--type", "t")[0] == 0
    code, out, _ = run(
        capsys, "audit", "verify", str(log), "--pubkey", str(tmp_path / "pub.pem"), "--json"
    )
    assert code == 0
    assert json.loads(out)["ok"] is True


@pytest.mark.guarantee("audit-no-key-recreation")
def test_appending_to_an_existing_log_whose_keys_are_gone_fails(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for key in (home / "keys").iterdir():
        key.unlink()
    code, _, err = run(capsys, "audit", "append", "--dir", str(home), "--type", "t")
    assert code == 1
    assert "refusing to create new keys" in err
    assert list((home / "keys").iterdir()) == []


def test_head_seal_signs_the_unsealed_tail_before_exporting(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = log_of(home)
    args = ("audit", "append", "--dir", str(home), "--type", "t", "--no-seal")
    assert run(capsys, *args)[0] == 0
    _, out, _ = run(capsys, "audit", "head", str(log), "--dir", str(home))
    assert "unsealed after it: 1" in out
    code, out, _ = run(capsys, "audit", "head", str(log), "--dir", str(home), "--seal", "--export")
    assert code == 0
    assert json.loads(out)["seq"] == 3
