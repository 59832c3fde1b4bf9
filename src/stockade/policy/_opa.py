"""The policy's ``opa:`` section: which questions Rego decides, and where the Rego lives.

``mode: regopy`` evaluates module files (relative to the policy's directory) in process;
``mode: url`` asks an OPA server (https, or http on loopback only). ``delegate`` names the
questions OPA answers instead of the built-in engine; ``enabled: false`` is the operator's switch
back to the built-in engine. The module files are read and compiled when the policy loads.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import field_validator, model_validator

from ._base import StrictModel as _M
from ._base import bad as _bad
from ._normalise import Finding

__all__ = ["MAX_MODULE_BYTES", "OPA_QUESTIONS", "OpaPolicy", "read_opa_modules"]

#: The questions a policy may delegate (the same names as ``stockade.opa.QUESTIONS``).
OPA_QUESTIONS = ("tool_call", "task", "server_access", "secret_access", "delegation", "data_access")
OpaQuestion = Literal[
    "tool_call", "task", "server_access", "secret_access", "delegation", "data_access"
]
MAX_MODULE_BYTES = 256 * 1024
_PREFIX = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62}){0,7}")
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _rel(v: str) -> str:
    if not v or not v.isprintable() or "\\" in v or not v.endswith(".rego"):
        raise _bad(f"module {v!r} is not a .rego file path", "write modules: [policy/authz.rego]")
    norm = posixpath.normpath(v)
    if norm.startswith("/") or norm == ".." or norm.startswith("../"):
        raise _bad(f"module {v!r} leaves the policy directory", "keep Rego beside the policy")
    return norm


class OpaPolicy(_M):
    """Delegation of decisions to OPA (docs/policy.md, "OPA")."""

    enabled: bool = True
    mode: Literal["regopy", "url"]
    modules: tuple[str, ...] = ()
    url: str | None = None
    prefix: str = "stockade"
    delegate: tuple[OpaQuestion, ...] = ("tool_call",)
    timeout_s: float = 2.0

    @field_validator("modules")
    @classmethod
    def _modules(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_rel(m) for m in v)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            u = urlsplit(v)
            host = u.hostname or ""
        except ValueError as e:
            raise _bad(f"OPA url {v!r} does not parse", "write https://opa.example/") from e
        ok = (u.scheme == "https" and host) or (u.scheme == "http" and host in _LOOPBACK)
        if not ok or "@" in u.netloc or not v.isprintable():
            raise _bad(
                f"OPA url {v!r} is neither https nor http on loopback",
                "use https, or run OPA beside stockade on 127.0.0.1",
            )
        return v

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not _PREFIX.fullmatch(v):
            raise _bad(f"prefix {v!r} is not a dotted Rego package path", "write prefix: stockade")
        return v

    @field_validator("delegate")
    @classmethod
    def _delegate(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise _bad("delegate is empty", "name the questions OPA answers, e.g. [tool_call]")
        if len(set(v)) != len(v):
            raise _bad("delegate names a question twice", "list each question once")
        return v

    @field_validator("timeout_s")
    @classmethod
    def _timeout(cls, v: float) -> float:
        if not 0 < v <= 30:
            raise _bad(f"timeout_s {v} is outside (0, 30]", "use a few seconds, e.g. 2")
        return v

    @model_validator(mode="after")
    def _mode(self) -> OpaPolicy:
        if self.mode == "regopy" and (not self.modules or self.url is not None):
            raise _bad("mode regopy needs modules: and no url:", "list .rego files under modules")
        if self.mode == "url" and (self.url is None or self.modules):
            raise _bad("mode url needs url: and no modules:", "give the OPA server's url")
        return self

    def delegates(self, question: str) -> bool:
        return self.enabled and question in self.delegate


def read_opa_modules(
    tree: dict[str, Any], policy_file: str
) -> tuple[dict[str, str], list[Finding]]:
    """Read and compile the raw tree's ``opa.modules``: relative path -> Rego text."""
    out: dict[str, str] = {}
    errors: list[Finding] = []
    section = tree.get("opa")
    mods = section.get("modules") if isinstance(section, dict) else None
    if not isinstance(mods, list):
        return out, errors
    base = os.path.dirname(os.path.realpath(policy_file))
    for i, rel in enumerate(mods):
        where: tuple[str | int, ...] = ("opa", "modules", i)
        if not isinstance(rel, str):
            continue
        try:
            norm = _rel(rel)
        except ValueError:
            continue  # the schema pass reports it
        real = os.path.realpath(os.path.join(base, norm))
        if not real.startswith(base.rstrip("/") + "/"):
            errors.append(
                Finding(where, f"{rel!r} resolves outside the policy directory", "keep it beside")
            )
            continue
        try:
            with open(real, "rb") as f:
                data = f.read(MAX_MODULE_BYTES + 1)
        except OSError as e:
            errors.append(
                Finding(where, f"cannot read Rego module {rel!r}: {e.strerror}", "check the path")
            )
            continue
        if len(data) > MAX_MODULE_BYTES:
            errors.append(
                Finding(where, f"Rego module {rel!r} is over {MAX_MODULE_BYTES} bytes", "split it")
            )
            continue
        try:
            out[norm] = data.decode("utf-8")
        except UnicodeDecodeError:
            errors.append(Finding(where, f"Rego module {rel!r} is not UTF-8", "save it as UTF-8"))
            continue
        problem = _compile_error(norm, out[norm])
        if problem:
            errors.append(
                Finding(where, f"Rego module {rel!r} does not compile: {problem}", "fix the module")
            )
    return out, errors


def _compile_error(name: str, text: str) -> str:
    """Empty if regopy compiles the module (queried once with an empty input), else the error."""
    from regopy import Interpreter, RegoError  # type: ignore[import-untyped]

    try:
        rego = Interpreter()
        rego.add_module(name, text)
        rego.set_input_term(json.dumps({}))
        out = rego.query("data")
    except RegoError as e:
        return str(e)[:300]
    text_out = str(out)
    if not out.ok() or text_out.startswith("Errors"):
        return text_out[:300]
    return ""
