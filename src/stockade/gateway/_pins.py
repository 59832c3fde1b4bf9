"""Tool pinning: a tool is exposed only when its full definition's hash is pinned.

Pure core (:func:`reconcile`) plus the pin-file model. A pin set belongs to one server *and* one
package identity (image digest or package-tree hash): a different package voids every pin.
Trust-on-first-use pins new tools only for servers whose policy opts into it, only when the scan
found nothing, and never re-pins a *changed* definition: a change always waits for an operator.

Prompts are pinned the same way, in the same pin set, under the key ``prompt:<name>`` (no tool
name contains ``:``): the hashed definition is the prompt's name, title, description and
arguments as the server lists them, so ``stockade tools diff``/``approve`` review them too.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from stockade.models import Frozen

from ._canon import definition_hash
from ._scan import Finding, scan_tool

__all__ = [
    "PROMPT_PREFIX",
    "Pending",
    "Pin",
    "PinSet",
    "Reconciled",
    "approve",
    "merge_pending",
    "prompt_definition",
    "reconcile",
    "reconcile_prompts",
]

PROMPT_PREFIX = "prompt:"


class Pin(Frozen):
    """An approved definition hash, how it was approved, and what the scan found then."""

    hash: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    approved_by: str = Field(min_length=1)
    findings: tuple[Finding, ...] = ()


class Pending(Frozen):
    """A definition seen but not pinned (new or changed), kept for ``stockade tools diff``."""

    tool: str
    hash: str
    reason: Literal["new", "changed", "package-changed", "duplicate"]
    definition: dict[str, Any]
    pinned_hash: str | None = None
    findings: tuple[Finding, ...] = ()


class PinSet(Frozen):
    """The pin file of one server (JSON, ``version: 1``)."""

    version: Literal[1] = 1
    server: str = Field(min_length=1)
    package: str = ""
    tools: dict[str, Pin] = Field(default_factory=dict)


class Reconciled(Frozen):
    """Outcome of comparing a server's current tools with its pins."""

    pins: PinSet
    exposed: dict[str, dict[str, Any]]
    pending: dict[str, Pending]
    events: tuple[dict[str, Any], ...] = ()


def reconcile(
    pins: PinSet,
    package: str,
    tools: list[dict[str, Any]],
    *,
    tofu: bool,
    other_tools: tuple[str, ...] = (),
) -> Reconciled:
    """Decide which of ``tools`` are exposed; returns the (possibly TOFU-extended) pin set."""
    same_package = pins.package == package
    current = dict(pins.tools) if same_package else {}
    fresh_package = not pins.tools and not pins.package
    exposed: dict[str, dict[str, Any]] = {}
    pending: dict[str, Pending] = {}
    events: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    for tool in tools:
        n = str(tool.get("name", ""))
        counts[n] = counts.get(n, 0) + 1
    for tool in tools:
        name = str(tool.get("name", ""))
        h = definition_hash(tool)
        if counts[name] > 1:  # which one would the server run? neither is exposed
            pending[name] = Pending(
                tool=name, hash=h, reason="duplicate", definition=tool, findings=()
            )
            events.append({"event": "pin.duplicate", "tool": name, "hash": h, "findings": 0})
            continue
        pin = current.get(name)
        if pin is not None and pin.hash == h:
            exposed[name] = tool
            continue
        findings = scan_tool(tool, other_tools)
        if pin is None and tofu and not findings and (same_package or fresh_package):
            current[name] = Pin(hash=h, approved_by="tofu", findings=findings)
            exposed[name] = tool
            events.append({"event": "pin.tofu", "tool": name, "hash": h, "findings": len(findings)})
            continue
        if not same_package and not fresh_package:
            reason: Literal["new", "changed", "package-changed"] = "package-changed"
        else:
            reason = "new" if pin is None else "changed"
        old = pins.tools.get(name)
        pending[name] = Pending(
            tool=name,
            hash=h,
            reason=reason,
            definition=tool,
            pinned_hash=old.hash if old else None,
            findings=findings,
        )
        events.append(
            {"event": f"pin.{reason}", "tool": name, "hash": h, "findings": len(findings)}
        )
    new_pins = PinSet(
        server=pins.server,
        package=package if same_package or fresh_package else pins.package,
        tools=current,
    )
    return Reconciled(pins=new_pins, exposed=exposed, pending=pending, events=tuple(events))


def approve(pins: PinSet, pending: Pending, *, package: str, approved_by: str) -> PinSet:
    """Pin one pending definition (an operator's decision). Changing package drops older pins."""
    tools = dict(pins.tools) if pins.package == package else {}
    tools[pending.tool] = Pin(hash=pending.hash, approved_by=approved_by, findings=pending.findings)
    return PinSet(server=pins.server, package=package, tools=tools)


def prompt_definition(prompt: dict[str, Any]) -> dict[str, Any] | None:
    """What a prompt's pin hashes: its name (under ``prompt:``), title, description and arguments
    exactly as listed; None for a prompt without a usable name (never listed)."""
    name = prompt.get("name")
    if not isinstance(name, str) or not name or len(name) > 200:
        return None
    out: dict[str, Any] = {"name": PROMPT_PREFIX + name}
    for key in ("title", "description", "arguments"):
        if key in prompt:
            out[key] = prompt[key]
    return out


def reconcile_prompts(
    pins: PinSet, package: str, prompts: list[dict[str, Any]], *, tofu: bool
) -> Reconciled:
    """:func:`reconcile` for a server's listed prompts; ``exposed`` is keyed by the prompt's own
    name, ``pending`` by its pin key (``prompt:<name>``). Tool pins are kept as they are."""
    defs = [d for p in prompts if (d := prompt_definition(p)) is not None]
    rec = reconcile(pins, package, defs, tofu=tofu)
    exposed = {k.removeprefix(PROMPT_PREFIX): v for k, v in rec.exposed.items()}
    return rec.model_copy(update={"exposed": exposed})


def merge_pending(
    old: dict[str, Pending], new: dict[str, Pending], *, prompts: bool
) -> dict[str, Pending]:
    """A server's pending list with its prompt half (``prompts``) or its tool half replaced."""
    keep = {k: v for k, v in old.items() if k.startswith(PROMPT_PREFIX) != prompts}
    return {**keep, **new}
