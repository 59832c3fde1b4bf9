"""Before schema validation: detect the version, refuse unsafe requests by name, expand shorthands.

Works on the plain tree from :mod:`._yaml` and returns a version-1 tree for the schema plus
findings located by *raw* paths (paths into the file as written).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from ._yaml import Path

__all__ = ["Finding", "Normalised", "normalise"]


@dataclass(frozen=True)
class Finding:
    path: Path
    what: str
    fix: str
    at_key: bool = False


@dataclass
class Normalised:
    tree: dict[str, Any] | None
    version: int
    findings: list[Finding] = field(default_factory=list)

    def to_raw(self, path: Path) -> Path:
        """Map a path in the version-1 tree back to the file (``servers`` was ``allow`` in v0)."""
        if self.version == 0 and path[:1] == ("servers",):
            return ("allow", *path[1:])
        return path


V0_TOP = ("default", "allow")
V0_ENTRY = ("name", "fs_allowlist", "network", "cpu_seconds", "memory_mb")
V1_TOP = (
    "version", "default", "registries", "secret_store", "approvals", "clients", "servers",
    "signatures", "opa", "kubernetes",
)  # fmt: skip

# Keys that ask for something stockade never grants, with the reason given to the operator.
UNSAFE_SERVER_KEYS: dict[str, str] = {
    "privileged": "sandboxes never run privileged",
    "host_network": "sandboxes never share the host network; list egress domains under network",
    "host_pid": "sandboxes never share the host PID namespace",
    "host_ipc": "sandboxes never share the host IPC namespace",
    "capabilities": "sandboxes run with no Linux capabilities",
    "cap_add": "sandboxes run with no Linux capabilities",
    "devices": "sandboxes get no host devices",
    "security_opt": "seccomp/AppArmor/no_new_privs are fixed, not configurable",
    "seccomp": "the seccomp profile is fixed (default), not configurable",
    "apparmor": "the AppArmor profile is not configurable",
    "no_new_privs": "no_new_privs is always on",
    "allow_privilege_escalation": "privilege escalation is always off",
    "read_only_root": "the root filesystem is always read-only; use fs_allowlist or /tmp",
    "user": "sandboxes always run as an unprivileged uid (65532)",
    "uid": "sandboxes always run as an unprivileged uid (65532)",
    "run_as_root": "sandboxes never run as root",
    "volumes": "host paths are granted only through fs_allowlist",
    "mounts": "host paths are granted only through fs_allowlist",
    "binds": "host paths are granted only through fs_allowlist",
    "pid_limit": "use pids",
}
_SECRET_VALUE_KEYS = ("value", "token", "password", "secret", "key", "data", "literal", "content")


def normalise(doc: Any) -> Normalised:
    if not isinstance(doc, dict):
        return Normalised(
            None,
            1,
            [
                Finding(
                    (),
                    "the policy must be a mapping",
                    "start with `version: 1` and `default: deny`",
                )
            ],
        )
    version = doc.get("version", 0)
    if "version" in doc and (type(version) is not int or version not in (0, 1)):
        return Normalised(
            None,
            1,
            [
                Finding(
                    ("version",),
                    f"unsupported policy version {version!r}",
                    "write version: 1 (or omit it for the version-0 plugin shape)",
                )
            ],
        )
    out = Normalised(None, int(version))
    tree = copy.deepcopy(doc)
    if out.version == 0:
        tree.pop("version", None)
        for key in list(tree):
            if key not in V0_TOP:
                hint = (
                    f"add `version: 1` at the top to use {key!r}"
                    if key in V1_TOP
                    else "remove it; a version-0 policy has only default and allow"
                )
                out.findings.append(Finding((key,), f"unknown key {key!r}", hint, at_key=True))
                del tree[key]
        servers = tree.pop("allow", [])
        tree = {"version": 1, **tree, "servers": servers}
        entry_path: tuple[str, ...] = ("allow",)
    else:
        servers = tree.get("servers", [])
        entry_path = ("servers",)
    if tree.get("default") == "allow":
        out.findings.append(
            Finding(
                ("default",),
                "unsafe request: default: allow",
                "write default: deny and grant each server explicitly",
            )
        )
        tree["default"] = "deny"
    if isinstance(servers, list):
        for i, entry in enumerate(servers):
            if isinstance(entry, dict):
                _entry(entry, (*entry_path, i), out)
    out.tree = tree
    return out


def _network(entry: dict[str, Any], path: Path, out: Normalised) -> None:
    net = entry["network"]
    where = (*path, "network")
    if net is False or net == [] or (out.version == 1 and net == "none"):
        entry["network"] = {"mode": "none"}
    elif out.version == 1 and isinstance(net, list):
        entry["network"] = {"mode": "allowlist", "domains": net}
    elif out.version == 1 and isinstance(net, dict):
        pass  # the explicit {mode, domains} form; the schema checks it
    elif net is True or net in ("host", "all", "any", "*"):
        out.findings.append(
            Finding(
                where,
                f"unsafe request: network: {net!r} (unrestricted or host egress)",
                "write network: none (false in version 0), or list the domains (version 1)",
            )
        )
        entry["network"] = {"mode": "none"}
    else:
        shown = repr(net)[:40]
        out.findings.append(
            Finding(
                where,
                f"network must be {'false' if out.version == 0 else 'none or a list of domains'}"
                f", got {shown}",
                "write network: false"
                if out.version == 0
                else "write network: none, or network: [api.example.com, '*.example.com']",
            )
        )
        entry["network"] = {"mode": "none"}


def _entry(entry: dict[str, Any], path: Path, out: Normalised) -> None:
    for key in list(entry):
        if key in UNSAFE_SERVER_KEYS:
            out.findings.append(
                Finding(
                    (*path, key),
                    f"unsafe request: {key!r} ({UNSAFE_SERVER_KEYS[key]})",
                    f"remove {key}",
                    at_key=True,
                )
            )
            del entry[key]
    if out.version == 0:
        for key in list(entry):
            if key not in V0_ENTRY:
                out.findings.append(
                    Finding(
                        (*path, key),
                        f"unknown key {key!r} in a version-0 entry",
                        "remove it, or add `version: 1` and move the entry under servers:",
                        at_key=True,
                    )
                )
                del entry[key]
        entry["kind"] = "plugin"
    if "network" in entry:
        _network(entry, path, out)
    fs = entry.get("fs_allowlist")
    if isinstance(fs, list):
        entry["fs_allowlist"] = [{"path": e} if isinstance(e, str) else e for e in fs]
    secrets = entry.get("secrets")
    if isinstance(secrets, list):
        kept: list[Any] = []
        for j, s in enumerate(secrets):
            if isinstance(s, dict):
                literal = [k for k in s if k in _SECRET_VALUE_KEYS]
                if literal:
                    out.findings.append(
                        Finding(
                            (*path, "secrets", j, literal[0]),
                            "a secret value is written in the policy; policies hold names only",
                            "delete the value (and rotate it), store it with the secret store, "
                            "and list only its name",
                            at_key=True,
                        )
                    )
                    continue
                if set(s) == {"name"}:
                    kept.append(s["name"])
                    continue
            kept.append(s)
        entry["secrets"] = kept
    tools = entry.get("tools")
    if isinstance(tools, dict) and tools.get("default") == "allow":
        out.findings.append(
            Finding(
                (*path, "tools", "default"),
                "unsafe request: tools default: allow",
                "write default: deny and add allow rules for the tools you need",
            )
        )
        tools["default"] = "deny"
