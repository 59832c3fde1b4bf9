"""Import the common MCP client configuration (``{"mcpServers": {...}}``) as a stockade policy.

Pure: takes the parsed JSON, returns the policy document, the secret values to store, and notes.
Credential-looking ``env`` entries (by name or by value) move into the secret store and are granted
by name; their values are never copied into the policy. Every imported server starts with no tool
rules (default deny) and no TOFU: the operator reviews and allows tools explicitly.
"""

from __future__ import annotations

import re
from typing import Any

from stockade.models import Frozen

from ._errors import ConfigError

__all__ = ["ImportResult", "import_mcp_servers"]

_SECRET_NAME = re.compile(
    r"(TOKEN|SECRET|PASSW|API_?KEY|ACCESS_?KEY|PRIVATE|CREDENTIAL|AUTH|COOKIE|SESSION)", re.I
)
_SECRET_VALUE = re.compile(
    r"(ghp_|gh[ousr]_|github_pat_|sk-|sk_live_|xox[abprs]-|AKIA|AIza|glpat-|-----BEGIN|eyJ)"
)
_OPAQUE = re.compile(r"^[A-Za-z0-9_\-+/=.]{24,}$")


class ImportResult(Frozen):
    doc: dict[str, Any]
    secrets: dict[str, str]
    notes: tuple[str, ...] = ()


def _server_name(raw: str) -> str:
    name = re.sub(r"[^a-z0-9-]+", "-", raw.lower())
    name = re.sub(r"-{2,}", "-", name).strip("-")[:32].strip("-")
    if not name:
        raise ConfigError(f"server name {raw[:40]!r} has no usable characters", "rename it")
    return name


def _looks_secret(key: str, value: str) -> bool:
    if _SECRET_NAME.search(key) or _SECRET_VALUE.search(value):
        return True
    has_digit = any(c.isdigit() for c in value)
    has_alpha = any(c.isalpha() for c in value)
    return bool(_OPAQUE.fullmatch(value)) and has_digit and has_alpha and "/" not in value[:1]


def import_mcp_servers(data: Any) -> ImportResult:
    if not isinstance(data, dict) or not isinstance(data.get("mcpServers"), dict):
        raise ConfigError(
            "the configuration has no 'mcpServers' object",
            'give a file shaped like {"mcpServers": {"name": {"command": ..., "args": [...]}}}',
        )
    servers: list[dict[str, Any]] = []
    secrets: dict[str, str] = {}
    notes: list[str] = []
    seen: set[str] = set()
    for raw_name, entry in data["mcpServers"].items():
        if not isinstance(entry, dict):
            raise ConfigError(f"server {str(raw_name)[:40]!r} is not an object", "fix the file")
        name = _server_name(str(raw_name))
        if name in seen:
            raise ConfigError(f"two servers normalise to the name {name!r}", "rename one")
        seen.add(name)
        if name != raw_name:
            notes.append(f"server {raw_name!r} renamed to {name!r}")
        if "url" in entry or "command" not in entry:
            notes.append(f"server {raw_name!r} skipped: remote (url) servers are not imported")
            seen.discard(name)
            continue
        command, args = entry["command"], entry.get("args", [])
        if not isinstance(command, str) or not isinstance(args, list):
            raise ConfigError(
                f"server {raw_name!r}: command must be a string, args a list", "fix it"
            )
        env_in = entry.get("env") or {}
        if not isinstance(env_in, dict):
            raise ConfigError(f"server {raw_name!r}: env must be an object", "fix it")
        env: dict[str, str] = {}
        granted: list[str] = []
        for raw_key, raw_value in env_in.items():
            key, value = str(raw_key), str(raw_value)
            if _looks_secret(key, value):
                secret = f"{name}.{key}"
                secrets[secret] = value
                granted.append(secret)
                notes.append(
                    f"server {name!r}: env {key} moved to secret {secret!r} (granted as a file)"
                )
            else:
                env[key] = value
        server: dict[str, Any] = {
            "name": name,
            "command": [command, *[str(a) for a in args]],
            "tools": {"default": "deny", "rules": []},
        }
        if env:
            server["env"] = env
        if granted:
            server["secrets"] = sorted(granted)
        servers.append(server)
        notes.append(f"server {name!r}: no tools allowed yet; add tools.rules after review")
    doc = {"version": 1, "default": "deny", "servers": servers}
    return ImportResult(doc=doc, secrets=secrets, notes=tuple(notes))
