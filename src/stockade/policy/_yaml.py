"""Strict, safe YAML: a tree of plain values plus the line/column of every node.

PyYAML's parser (libyaml when present) gives events with marks; our own composer builds the tree
and refuses anchors and aliases (billion laughs), merge keys, explicit tags, duplicate keys,
non-string keys, YAML 1.1 surprises (``yes``, ``0777``, ``1:30``, ``.nan``), multiple documents,
documents over :data:`MAX_BYTES` and nesting over :data:`MAX_DEPTH`. No constructor ever runs.
Every problem is collected with its position.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import ScalarNode

from stockade.textsafe import find_hidden

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


# libyaml's parser when available (fast); the pure-Python one otherwise. Only its *events* are
# used: the composer below is ours, so no constructor ever runs.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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
    loader = _Loader(text)
    try:
        out.value = _document(loader, out)
    except _Refused as r:
        out.value = None
        out.problems.append(r.problem)
        return out
    except yaml.MarkedYAMLError as e:
        out.value = None
        mark = e.problem_mark or e.context_mark
        msg = " ".join(x for x in (e.context, e.problem) if x) or "malformed YAML"
        out.problems.append(
            YamlProblem(
                _line(mark), _col(mark), f"malformed YAML: {msg}", "correct the YAML syntax here"
            )
        )
        return out
    except yaml.YAMLError as e:
        out.value = None
        out.problems.append(YamlProblem(1, 1, f"malformed YAML: {e}", "correct the YAML syntax"))
        return out
    finally:
        loader.dispose()
    if out.value is None:
        out.problems.append(
            YamlProblem(1, 1, "the document is empty", "write a policy (see docs/policy.md)")
        )
    return out


def _document(loader: Any, out: Located) -> Any:
    loader.get_event()  # StreamStart
    if loader.check_event(StreamEndEvent):
        return None
    loader.get_event()  # DocumentStart
    value = _node(loader, (), out, 0)
    loader.get_event()  # DocumentEnd
    if not loader.check_event(StreamEndEvent):
        raise _Refused(
            loader.peek_event().start_mark,
            "expected a single document, found another",
            "keep exactly one YAML document (remove the extra '---')",
        )
    return value


def _node(loader: Any, path: Path, out: Located, depth: int) -> Any:
    event = loader.get_event()
    mark = event.start_mark
    if isinstance(event, AliasEvent):
        raise _Refused(
            mark,
            "YAML aliases (*name) are not allowed",
            "write the value out in full; anchors and aliases can expand exponentially",
        )
    if event.anchor is not None:
        raise _Refused(
            mark,
            f"YAML anchors (&{event.anchor}) are not allowed",
            "remove the anchor and write each value out in full",
        )
    if event.tag not in (None, "!"):
        raise _Refused(
            mark,
            f"explicit YAML tags ({event.tag}) are not allowed",
            "remove the tag; write plain strings, numbers, booleans, lists and mappings",
        )
    out.values[path] = (_line(mark), _col(mark))
    if isinstance(event, ScalarEvent):
        return _scalar(loader, event, out)
    if depth + 1 > MAX_DEPTH:
        raise _Refused(
            mark,
            f"nesting deeper than {MAX_DEPTH} levels",
            "flatten the document; a policy never needs this depth",
        )
    if isinstance(event, SequenceStartEvent):
        items: list[Any] = []
        while not loader.check_event(SequenceEndEvent):
            items.append(_node(loader, (*path, len(items)), out, depth + 1))
        loader.get_event()
        return items
    assert isinstance(event, MappingStartEvent)  # noqa: S101 - the parser yields only these
    result: dict[str, Any] = {}
    while not loader.check_event(MappingEndEvent):
        kevent = loader.peek_event()
        pos = (_line(kevent.start_mark), _col(kevent.start_mark))
        key = _key(loader, out, depth)
        if key is None:
            _node(loader, (), Located(), depth + 1)  # consume and drop the value
            continue
        if key in result:
            first = out.keys.get((*path, key), pos)
            out.problems.append(
                YamlProblem(
                    *pos,
                    f"duplicate key {key!r} (first at line {first[0]})",
                    "keep one of them; YAML would silently keep only the last",
                )
            )
            _node(loader, (), Located(), depth + 1)
            continue
        out.keys[(*path, key)] = pos
        result[key] = _node(loader, (*path, key), out, depth + 1)
    loader.get_event()
    return result


def _key(loader: Any, out: Located, depth: int) -> str | None:
    """A mapping key if it is a plain string; otherwise record a problem and return None."""
    event = loader.peek_event()
    pos = (_line(event.start_mark), _col(event.start_mark))
    if isinstance(event, ScalarEvent) and event.anchor is None and event.tag is None:
        loader.get_event()
        value: str = event.value
        _hidden(value, pos, out)
        if event.style:  # quoted or block: always a string ("" or None means plain)
            return value
        tag = loader.resolve(ScalarNode, value, (True, False))
        if tag == _TAG + "str":
            return value
        if tag == _TAG + "merge":
            out.problems.append(
                YamlProblem(*pos, "YAML merge keys (<<) are not allowed", "write each key out")
            )
            return None
        shown = value
    else:
        _node(loader, (), Located(), depth + 1)
        shown = "a collection" if not isinstance(event, ScalarEvent) else event.value
    out.problems.append(
        YamlProblem(*pos, f"mapping keys must be plain strings, got {shown!r}", "quote the key")
    )
    return None


def _hidden(value: str, pos: tuple[int, int], out: Located) -> None:
    hidden = find_hidden(value)
    if hidden:
        out.problems.append(
            YamlProblem(
                *pos,
                f"text contains hidden or control characters ({', '.join(hidden[:3])})",
                "remove them: they can make the policy read differently from what it says",
            )
        )


def _scalar(loader: Any, event: ScalarEvent, out: Located) -> Any:
    value: str = event.value
    pos = (_line(event.start_mark), _col(event.start_mark))
    _hidden(value, pos, out)
    if event.style or event.tag == "!":  # quoted or block: always a string
        return value
    tag: str = loader.resolve(ScalarNode, value, (True, False))
    if tag == _TAG + "str":
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
