"""``stockade ca``: the control plane's certificate authority (init, issue, revoke, crl)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import click

from stockade import paths
from stockade.errors import UsageError
from stockade.identity import CertificateAuthority, Role
from stockade.models import SystemClock
from stockade.textsafe import safe_text

__all__ = ["ca"]

_dir_option = click.option(
    "--dir",
    "ca_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="CA directory (default: $STOCKADE_HOME/ca).",
)


def _ca_dir(ca_dir: Path | None) -> Path:
    return ca_dir or paths.home() / "ca"


@click.group(name="ca")
def ca() -> None:
    """Certificate authority for mutual TLS between operators, gateways and runners."""


@ca.command(name="init")
@_dir_option
def init(ca_dir: Path | None) -> None:
    """Create the CA (ECDSA P-256; key 0600 in a 0700 directory) and an empty CRL."""
    authority = CertificateAuthority.init(_ca_dir(ca_dir), SystemClock())
    click.echo(f"created CA in {authority.directory}")
    click.echo(f"  certificate: {authority.cert_path}")
    click.echo(f"  revocation list: {authority.crl_path}")


@ca.command(name="issue")
@click.argument("name")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--hours", type=click.IntRange(1, 720), default=24, show_default=True)
@click.option("--host", "hosts", multiple=True, help="DNS name or IP for server use (repeat).")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Directory for NAME.pem and NAME.key (0600).",
)
@_dir_option
def issue(  # noqa: PLR0917 - click passes options positionally
    name: str, role: str, hours: int, hosts: tuple[str, ...], out: Path, ca_dir: Path | None
) -> None:
    """Issue a short-lived certificate for NAME carrying ROLE."""
    authority = CertificateAuthority.load(_ca_dir(ca_dir))
    issued = authority.issue(
        name, Role(role), SystemClock(), validity=timedelta(hours=hours), hosts=hosts
    )
    out.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = out / f"{name}.pem", out / f"{name}.key"
    if cert_path.exists() or key_path.exists():
        raise UsageError(f"{cert_path} or {key_path} already exists", "choose another --out")
    cert_path.write_bytes(issued.cert_pem)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(issued.key_pem)
    click.echo(
        f"issued {safe_text(name)} role={role} serial={issued.serial} "
        f"not_after={issued.not_after.isoformat()}"
    )
    click.echo(f"  certificate: {safe_text(str(cert_path))}")
    click.echo(f"  key: {safe_text(str(key_path))}")


@ca.command(name="revoke")
@click.argument("serial", type=int)
@_dir_option
def revoke(serial: int, ca_dir: Path | None) -> None:
    """Revoke the certificate with SERIAL and rewrite the signed CRL."""
    authority = CertificateAuthority.load(_ca_dir(ca_dir))
    authority.revoke(serial, SystemClock())
    click.echo(f"revoked serial {serial}; CRL rewritten at {authority.crl_path}")


@ca.command(name="crl")
@_dir_option
def crl(ca_dir: Path | None) -> None:
    """Re-sign the CRL (it is valid for 7 days; servers refuse clients once it expires)."""
    authority = CertificateAuthority.load(_ca_dir(ca_dir))
    click.echo(f"wrote {authority.write_crl(SystemClock())}")
