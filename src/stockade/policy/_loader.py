"""Load a policy file: strict YAML -> version detection -> schema -> host resolution -> hash.

Every problem is collected (not just the first) with file, line, column and a fix.
"""

from __future__ import annotations

import difflib
import json
import os
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ._normalise import Finding, Normalised, normalise
from ._opa import read_opa_modules
from ._policy import Policy, effective_hash
from ._problems import PolicyLoadError, Problem
from ._resolve import resolve
from ._schema import (
    Approvals,
    CategoryApproval,
    ClientRule,
    FsEntry,
    NetworkSpec,
    PolicyDoc,
    ServerPolicy,
    cross_checks,
)
from ._signatures import (
    ApprovedBaseSpec,
    IdentitySpec,
    SignatureRuleSpec,
    SignaturesPolicy,
    read_signature_material,
)
from ._tools import ArgumentRule, Arguments, RateLimit, ToolRule, ToolsPolicy
from ._yaml import MAX_BYTES, Located, Path, parse_yaml

__all__ = ["CheckResult", "check_policy", "load_policy", "parse_policy"]

_KNOWN_KEYS = sorted(
    {
        k
        for m in (
            PolicyDoc,
            ServerPolicy,
            ToolsPolicy,
            ToolRule,
            Arguments,
            ArgumentRule,
            RateLimit,
            FsEntry,
            Approvals,
            CategoryApproval,
            ClientRule,
            NetworkSpec,
            SignaturesPolicy,
            SignatureRuleSpec,
            IdentitySpec,
            ApprovedBaseSpec,
        )
        for k in m.model_fields
    }
)
_MISSING_FIX = {
    "default": "add `default: deny` at the top",
    "name": "give the entry a name",
    "tool": "add tool: <name or glob>",
    "action": "add action: allow, deny or approve",
    "rate": "add rate: <tokens per period>",
    "path": "add path: <directory relative to the policy>",
    "servers": "list the servers this client may use",
    "timeout_s": "add timeout_s: <seconds>",
}


@dataclass(frozen=True)
class CheckResult:
    """What ``policy check`` reports: the policy when valid, else every error; warnings always."""

    file: str
    policy: Policy | None
    errors: tuple[Problem, ...]
    warnings: tuple[Problem, ...]
    source_version: int | None

    @property
    def ok(self) -> bool:
        return self.policy is not None and not self.errors


def load_policy(path: str | os.PathLike[str]) -> Policy:
    """Load and validate a policy file; raise :class:`PolicyLoadError` listing every problem."""
    result = check_policy(path)
    if result.policy is None or result.errors:
        raise PolicyLoadError(result.file, result.errors)
    return result.policy


def check_policy(path: str | os.PathLike[str]) -> CheckResult:
    file = os.fspath(path)
    try:
        fd = os.open(file, os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as e:
        return _fail(
            file, Problem(file=file, message=f"cannot open: {e.strerror}", fix="check the path")
        )
    try:
        st = os.fstat(fd)
        if not _is_regular(st.st_mode):
            return _fail(file, Problem(file=file, message="not a regular file", fix="pass a file"))
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_BYTES and (chunk := os.read(fd, MAX_BYTES + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
        data = b"".join(chunks)
    finally:
        os.close(fd)
    return parse_policy(data, file=file)


def _is_regular(mode: int) -> bool:
    import stat

    return stat.S_ISREG(mode)


def _fail(file: str, *problems: Problem) -> CheckResult:
    return CheckResult(file, None, tuple(problems), (), None)


def parse_policy(data: bytes | str, *, file: str = "<memory>") -> CheckResult:
    """Validate policy text as if read from ``file`` (relative paths resolve beside it)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    located = parse_yaml(raw)
    errors = [
        Problem(file=file, line=p.line, col=p.col, message=p.message, fix=p.fix)
        for p in located.problems
    ]
    if located.value is None:
        return CheckResult(file, None, tuple(errors), (), None)
    norm = normalise(located.value)
    errors += [_locate(file, located, norm, f, raw_path=True) for f in norm.findings]
    if norm.tree is None:
        return CheckResult(file, None, tuple(_sorted(errors)), (), None)
    res = resolve(norm.tree, file)
    errors += [_locate(file, located, norm, f) for f in res.errors]
    warnings = [_locate(file, located, norm, f, warning=True) for f in res.warnings]
    material, material_errors = read_signature_material(norm.tree, file)
    errors += [_locate(file, located, norm, f) for f in material_errors]
    errors += [_locate(file, located, norm, f) for f in read_opa_modules(norm.tree, file)[1]]
    try:
        doc = PolicyDoc.model_validate_json(json.dumps(norm.tree))
    except ValidationError as e:
        seen_union: set[Path] = set()
        for err in e.errors():
            path, union = _tree_path(
                norm.tree, err["loc"], err["type"] in ("missing", "extra_forbidden")
            )
            if union and path in seen_union:
                continue  # one problem per value, not one per member of a union type
            if union:
                seen_union.add(path)
            errors.append(_from_pydantic(file, located, norm, err, path=path, union=union))
        return CheckResult(file, None, tuple(_sorted(errors)), tuple(warnings), norm.version)
    errors += [
        _locate(file, located, norm, Finding(p, what, fix)) for p, what, fix in cross_checks(doc)
    ]
    warnings += [_locate(file, located, norm, f, warning=True) for f in _doc_warnings(doc)]
    if errors:
        return CheckResult(file, None, tuple(_sorted(errors)), tuple(warnings), norm.version)
    policy = Policy(
        doc=doc,
        file=file,
        source_version=0 if norm.version == 0 else 1,
        effective_hash=effective_hash(doc),
        mounts={s.name: res.mounts.get(s.name, ()) for s in doc.servers},
        secret_store_path=res.secret_store,
        signature_material=material,
        warnings=tuple(warnings),
    )
    return CheckResult(file, policy, (), tuple(warnings), norm.version)


def _doc_warnings(doc: PolicyDoc) -> list[Finding]:
    out: list[Finding] = []
    for i, s in enumerate(doc.servers):
        if s.runtime == "namespaces":
            out.append(
                Finding(
                    ("servers", i, "runtime"),
                    f"server {s.name!r} runs with runtime namespaces: the host kernel is exposed "
                    "(the gVisor guarantee is waived)",
                    "use runtime: gvisor unless gVisor is unavailable",
                )
            )
        if s.image is not None and not s.verify:
            out.append(
                Finding(
                    ("servers", i, "image"),
                    f"image server {s.name!r} names no signature rule (verify:); every run of it "
                    "is refused",
                    "add verify: [<rule>] naming a rule under signatures.rules",
                )
            )
        if s.image is not None and "@" not in s.image:
            out.append(
                Finding(
                    ("servers", i, "image"),
                    f"image {s.image!r} is not pinned by digest; it is resolved and pinned at "
                    "first run",
                    "pin it: name@sha256:<digest>",
                )
            )
        if s.resources.unlisted_uris == "route":
            out.append(
                Finding(
                    ("servers", i, "resources", "unlisted_uris"),
                    f"server {s.name!r} opts in to unlisted resource uris: a raw uri that no "
                    "server offered goes to it when it is the only opted-in server granted to the "
                    "client (its read policy still decides; every such routing is audited as "
                    "gateway.raw_uri_routed with unlisted: true)",
                    "remove resources.unlisted_uris unless clients must reach uris this server "
                    "never lists",
                )
            )
        for j, r in enumerate(s.tools.rules):
            if r.allow_without_approval:
                out.append(
                    Finding(
                        ("servers", i, "tools", "rules", j, "allow_without_approval"),
                        f"tool rule {r.tool!r} at tier {r.tier.value} is allowed without approval",
                        "remove allow_without_approval unless this is truly intended",
                    )
                )
    return out


def _locate(
    file: str,
    located: Located,
    norm: Normalised,
    f: Finding,
    *,
    raw_path: bool = False,
    warning: bool = False,
) -> Problem:
    path = f.path if raw_path else norm.to_raw(f.path)
    line, col = located.where(path, key=f.at_key)
    return Problem(
        file=file,
        line=line,
        col=col,
        message=f.what,
        fix=f.fix,
        severity="warning" if warning else "error",
    )


def _tree_path(tree: Any, loc: tuple[Any, ...], absent_ok: bool) -> tuple[Path, bool]:
    """The part of a pydantic ``loc`` that is a path in the tree; True if type tags were skipped.

    Union members add tags such as ``'str'`` or ``"literal['x']"`` to ``loc``; they are not keys.
    The last element is kept even when absent (a missing key, an unknown key, a dict key).
    """
    out: list[str | int] = []
    skipped = False
    node = tree
    for i, elem in enumerate(loc):
        last = i == len(loc) - 1
        if elem == "[key]":
            continue
        if (
            isinstance(node, dict)
            and isinstance(elem, str)
            and (elem in node or (last and absent_ok))
        ):
            out.append(elem)
            node = node.get(elem)
        elif isinstance(node, list) and isinstance(elem, int) and 0 <= elem < len(node):
            out.append(elem)
            node = node[elem]
        elif (
            isinstance(node, dict)
            and isinstance(elem, str)
            and elem not in node
            and (i + 1 < len(loc) and loc[i + 1] == "[key]")
        ):
            out.append(elem)
        else:
            skipped = True
    return tuple(out), skipped


def _from_pydantic(
    file: str, located: Located, norm: Normalised, err: Any, *, path: Path, union: bool
) -> Problem:
    at_key = bool(err["loc"]) and err["loc"][-1] == "[key]"
    etype: str = err["type"]
    last = path[-1] if path else ""
    dotted = ".".join(str(p) for p in norm.to_raw(path)) or "policy"
    if etype == "extra_forbidden":
        close = difflib.get_close_matches(str(last), _KNOWN_KEYS, n=1, cutoff=0.75)
        what = f"unknown key {last!r}"
        fix = f"did you mean {close[0]!r}?" if close else "remove it (see docs/policy.md)"
        at_key = True
    elif etype == "missing":
        what = f"missing mandatory key {last!r}"
        fix = _MISSING_FIX.get(str(last), f"add {last}")
        path = path[:-1]
    elif etype in ("value_error", "assertion_error"):
        msg = str(err["msg"]).removeprefix("Value error, ")
        what, _, fix = msg.partition("\nfix: ")
        what = f"{dotted}: {what}" if path else what
    else:
        shown = json.dumps(err.get("input"), default=str)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        msg = "not one of the accepted types" if union else err["msg"]
        what = f"{dotted}: {msg} (got {shown})"
        if etype in ("less_than_equal", "less_than"):
            fix = "lower it to the hard maximum or below"
        elif etype in ("greater_than", "greater_than_equal"):
            fix = "raise it to the minimum or above"
        elif etype == "literal_error" and last in ("default",):
            fix = "write default: deny"
        elif etype.endswith("_type") or etype in ("literal_error", "enum"):
            fix = "write a value of the expected type/choice (see docs/policy.md)"
        else:
            fix = "see docs/policy.md"
    line, col = located.where(norm.to_raw(path), key=at_key)
    return Problem(file=file, line=line, col=col, message=what, fix=fix)


def _sorted(problems: list[Problem]) -> list[Problem]:
    seen: set[str] = set()
    out: list[Problem] = []
    for p in sorted(problems, key=lambda p: (p.line, p.col, p.message)):
        if str(p) not in seen:
            seen.add(str(p))
            out.append(p)
    return out
