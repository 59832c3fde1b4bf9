"""``gateway_policy``: a policy's image servers as the Kubernetes gateway's configuration. Its
information-flow sinks are derived by the same function as the local loader's, so a server's
sensitive tools are sinks whichever backend runs it."""

from __future__ import annotations

from pathlib import Path

import pytest

from stockade.gateway import load_policy_for_gateway
from stockade.kube import KubeError
from stockade.kube._gateway import gateway_policy
from stockade.models import Category
from stockade.policy import load_policy

DIGEST = "sha256:" + "5e" * 32
POLICY = """\
version: 1
default: deny
registries: [ghcr.io/acme/*]
servers:
  - name: mail
    {launch}
    tools:
      rules:
        - {{tool: read_inbox, action: allow, tier: low}}
        - {{tool: send_email, action: allow, tier: medium, category: exfiltration}}
        - {{tool: "get_*", action: allow, tier: low, category: exfiltration}}
        - {{tool: grant_admin, action: deny, tier: high, category: permission_grant}}
        - {{tool: set_config, action: approve, tier: high, category: config_change}}
"""


def _write(tmp_path: Path, launch: str) -> Path:
    (tmp_path / "srv").mkdir(parents=True, exist_ok=True)
    (tmp_path / "srv" / "server.py").write_text("")
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY.format(launch=launch))
    return path


def test_the_kubernetes_gateway_has_the_same_sinks_as_the_local_loader(tmp_path: Path) -> None:
    image = _write(tmp_path / "image", f"image: ghcr.io/acme/mail@{DIGEST}")
    command = _write(tmp_path / "command", "command: [python3, srv/server.py]")
    kube = gateway_policy(load_policy(image), {"mail": f"ghcr.io/acme/mail@{DIGEST}"})
    local = load_policy_for_gateway(command)
    assert kube.sinks == local.sinks
    assert {k: v.category for k, v in kube.sinks.items()} == {
        ("mail", "send_email"): Category.EXFILTRATION,
        ("mail", "set_config"): Category.CONFIG_CHANGE,
    }  # no glob rule, no denied tool, no tool without a sensitive category
    (spec,) = kube.config.servers
    assert spec.package == f"ghcr.io/acme/mail@{DIGEST}"


def test_a_server_without_a_verified_reference_is_refused(tmp_path: Path) -> None:
    image = _write(tmp_path, f"image: ghcr.io/acme/mail@{DIGEST}")
    with pytest.raises(KubeError, match="has no verified image"):
        gateway_policy(load_policy(image), {})
