"""Strict, safe YAML: a tree of plain values plus the line/column of every node.

PyYAML's composer gives node marks; on top of it this module refuses anchors and aliases (billion
laughs), merge keys, explicit tags, duplicate keys, non-string keys, YAML 1.1 surprises (``yes``,
``0777``, ``1:30``, ``.nan``), multiple documents, documents over :data:`MAX_BYTES` and nesting
over :data:`MAX_DEPTH`. Every problem is collected with its position.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.events import AliasEvent, CollectionStartEvent, NodeEvent, ScalarEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = ["MAX_BYTES", "MAX_DEPTH", "Located", "Path", "YamlProblem", "parse_yaml"]

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 24

Path = tuple[str | int, ...]

_TAG = "tag:yaml.org,2002:"
_INT = re.compile(r"-?(?:0|[1-9][0-9]*)")
_FLOAT = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_BOOL = {"true": True, "false": False}
_NULL = {"null", "~", ""}


@dataclass(frozen=True)
class YamlProblem:
    line: int
    col: int
    message: str
    fix: str


@dataclass
class Located:
    """The parsed value and, per path, the (line, col) of each value and of each mapping key."""

    value: Any = None
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)
    problems: list[YamlProblem] = field(default_factory=list)

    def where(self, path: Path, *, key: bool = False) -> tuple[int, int]:
        """Position of ``path`` (its key if ``key``), else of its nearest located ancestor."""
        p = tuple(path)
        while True:
            if key and p in self.keys:
                return self.keys[p]
            if p in self.values:
                return self.values[p]
            if not p:
                return (1, 1)
            p = p[:-1]


class _Refused(Exception):
    """Internal: stop composing (alias, tag, depth); carries a position."""

    def __init__(self, mark: Any, message: str, fix: str) -> None:
        super().__init__(message)
        self.problem = YamlProblem(_line(mark), _col(mark), message, fix)


def _line(mark: Any) -> int:
    return int(mark.line) + 1 if mark is not None else 1


def _col(mark: Any) -> int:
    return int(mark.column) + 1 if mark is not None else 1


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader whose composer refuses aliases, anchors, explicit tags and deep nesting."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, AliasEvent):
            raise _Refused(
                event.start_mark,
                "YAML aliases (*name) are not allowed",
                "write the value out in full; anchors and aliases can expand exponentially",
            )
        if isinstance(event, NodeEvent) and event.anchor is not None:
            raise _Refused(
                event.start_mark,
                f"YAML anchors (&{event.anchor}) are not allowed",
                "remove the anchor and write each value out in full",
            )
        tag = getattr(event, "tag", None)
        if isinstance(event, ScalarEvent | CollectionStartEvent) and tag not in (None, "!"):
            raise _Refused(
                event.start_mark,
                f"explicit YAML tags ({tag}) are not allowed",
                "remove the tag; write plain strings, numbers, booleans, lists and mappings",
            )
        if isinstance(event, CollectionStartEvent):
            self._depth += 1
            if self._depth > MAX_DEPTH:
                raise _Refused(
                    event.start_mark,
                    f"nesting deeper than {MAX_DEPTH} levels",
                    "flatten the document; a policy never needs this depth",
                )
            try:
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1
        return super().compose_node(parent, index)


def parse_yaml(data: bytes) -> Located:
    """Parse one YAML document strictly; problems are collected in the result, never raised."""
    out = Located()
    if len(data) > MAX_BYTES:
        out.problems.append(
            YamlProblem(
                1,
                1,
                f"file is {len(data)} bytes, over the {MAX_BYTES}-byte cap",
                "split the policy or remove unused entries",
            )
        )
        return out
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        out.problems.append(
            YamlProblem(1, 1, f"not UTF-8 (byte {e.start}: {e.reason})", "save the file as UTF-8")
        )
        return out
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
    except _Refused as r:
        out.problems.append(r.problem)
        return out
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        msg = " ".join(x for x in (e.context, e.problem) if x) or "malformed YAML"
        if "expected a single document" in msg:
            fix = "keep exactly one YAML document (remove the extra '---')"
        else:
            fix = "correct the YAML syntax at this position"
        out.problems.append(YamlProblem(_line(mark), _col(mark), f"malformed YAML: {msg}", fix))
        return out
    except yaml.YAMLError as e:
        out.problems.append(YamlProblem(1, 1, f"malformed YAML: {e}", "correct the YAML syntax"))
        return out
    finally:
        loader.dispose()
    if node is not None:
        out.value = _convert(node, (), out)
    if out.value is None:
        out.problems.append(
            YamlProblem(1, 1, "the document is empty", "write a policy (see docs/policy.md)")
        )
    return out


def _convert(node: Node, path: Path, out: Located) -> Any:
    out.values[path] = (_line(node.start_mark), _col(node.start_mark))
    if isinstance(node, MappingNode):
        result: dict[str, Any] = {}
        for knode, vnode in node.value:
            pos = (_line(knode.start_mark), _col(knode.start_mark))
            if not isinstance(knode, ScalarNode) or knode.tag != _TAG + "str":
                shown = knode.value if isinstance(knode, ScalarNode) else "a collection"
                if knode.tag == _TAG + "merge":
                    msg, fix = "YAML merge keys (<<) are not allowed", "write each key out"
                else:
                    msg = f"mapping keys must be plain strings, got {shown!r}"
                    fix = "quote the key"
                out.problems.append(YamlProblem(*pos, msg, fix))
                continue
            key = knode.value
            if key in result:
                first = out.keys.get((*path, key), pos)
                out.problems.append(
                    YamlProblem(
                        *pos,
                        f"duplicate key {key!r} (first at line {first[0]})",
                        "keep one of them; YAML would silently keep only the last",
                    )
                )
                continue
            out.keys[(*path, key)] = pos
            result[key] = _convert(vnode, (*path, key), out)
        return result
    if isinstance(node, SequenceNode):
        return [_convert(item, (*path, i), out) for i, item in enumerate(node.value)]
    assert isinstance(node, ScalarNode)  # noqa: S101 - the composer yields only these three
    return _scalar(node, out)


def _scalar(node: ScalarNode, out: Located) -> Any:
    value: str = node.value
    tag = node.tag
    pos = (_line(node.start_mark), _col(node.start_mark))
    if node.style is not None or tag == _TAG + "str":
        return value
    if tag == _TAG + "null" and value in _NULL:
        return None
    if tag == _TAG + "bool" and value in _BOOL:
        return _BOOL[value]
    if tag == _TAG + "int" and _INT.fullmatch(value):
        return int(value)
    if tag == _TAG + "float" and _FLOAT.fullmatch(value):
        return float(value)
    out.problems.append(
        YamlProblem(
            *pos,
            f"ambiguous YAML scalar {value!r} (read as {tag.removeprefix(_TAG)})",
            "quote it if it is text; write booleans as true/false and numbers in plain decimal",
        )
    )
    return value
