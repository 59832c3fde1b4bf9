"""Multi-document YAML output, with Secret values redacted for anything printed."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

import yaml

from ._render import Manifest

__all__ = ["REDACTED", "dump_all", "redact"]

REDACTED = "PHJlZGFjdGVkPg=="  # base64("<redacted>"): still a valid Secret for schema checks


class _Dumper(yaml.SafeDumper):
    """No anchors or aliases (stockade admit refuses them); multi-line text as literal blocks."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def redact(obj: Manifest) -> Manifest:
    """A copy with every Secret value replaced (keys stay: they say what is granted)."""
    if obj.get("kind") != "Secret":
        return obj
    out = copy.deepcopy(obj)
    for field in ("data", "stringData"):
        if isinstance(out.get(field), dict):
            out[field] = dict.fromkeys(out[field], REDACTED)
    return out


def dump_all(objs: Iterable[Manifest], *, reveal: bool = False) -> str:
    """YAML documents separated by ``---``; ASCII only, so no control character is printed."""
    docs: list[Any] = [o if reveal else redact(o) for o in objs]
    return yaml.dump_all(
        docs, Dumper=_Dumper, sort_keys=False, allow_unicode=False, explicit_start=True
    )
