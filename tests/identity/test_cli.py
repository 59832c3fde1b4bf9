"""``stockade ca``: init, issue, revoke through the real command line."""

from __future__ import annotations

import stat
from pathlib import Path

from click.testing import CliRunner
from cryptography import x509

from stockade.cli import cli
from stockade.identity import CertificateAuthority, Role, identity_from_certificate


def test_ca_init_issue_and_revoke_from_the_command_line(tmp_path: Path) -> None:
    runner = CliRunner()
    ca_dir, out = tmp_path / "ca", tmp_path / "out"
    r = runner.invoke(cli, ["ca", "init", "--dir", str(ca_dir)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(
        cli,
        ["ca", "issue", "ops", "--role", "operator", "--out", str(out), "--dir", str(ca_dir)],
    )
    assert r.exit_code == 0, r.output
    assert stat.S_IMODE((out / "ops.key").stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate((out / "ops.pem").read_bytes())
    assert identity_from_certificate(cert).role is Role.OPERATOR
    r = runner.invoke(cli, ["ca", "revoke", str(cert.serial_number), "--dir", str(ca_dir)])
    assert r.exit_code == 0, r.output
    assert cert.serial_number in CertificateAuthority.load(ca_dir).revoked_serials()


def test_ca_issue_refuses_an_unknown_role(tmp_path: Path) -> None:
    r = CliRunner().invoke(cli, ["ca", "issue", "x", "--role", "root", "--dir", str(tmp_path)])
    assert r.exit_code == 2
