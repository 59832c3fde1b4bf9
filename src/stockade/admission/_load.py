"""Parse manifest text into documents, safely (pure: text in, documents out).

YAML is loaded with a safe loader that also refuses anchors and aliases (no "billion laughs"),
duplicate keys (two readers could pick different values), non-string keys, nesting deeper than
:data:`MAX_DEPTH` and more than :data:`MAX_DOCUMENTS` documents; timestamps stay strings. JSON
(a file named ``*.json``: one object or an array of objects) is parsed with the same refusals. A
``v1 List`` is expanded into its items. Every refusal is an :class:`InputError` (exit 2).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from stockade.errors import InputError

__all__ = ["MAX_BYTES", "MAX_DEPTH", "MAX_DOCUMENTS", "Document", "load_documents"]

MAX_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 64
MAX_DOCUMENTS = 1000
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


@dataclass(frozen=True)
class Document:
    source: str
    index: int  # position of the document in its file (empty documents count)
    obj: Mapping[str, Any]
    item: int | None = None  # position inside a v1 List, when the document is one


def _checked_mapping(loader: Any, node: Any) -> dict[Any, Any]:
    """Construct a mapping, refusing non-string and duplicate keys."""
    seen: set[str] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            raise _Refused(key_node.start_mark, f"mapping key {key!r} is not a string")
        if key in seen:
            raise _Refused(key_node.start_mark, f"duplicate key {key!r}")
        seen.add(key)
    mapping: dict[Any, Any] = yaml.constructor.SafeConstructor.construct_mapping(
        loader, node, deep=True
    )
    return mapping


class _Loader(yaml.SafeLoader):
    """SafeLoader minus aliases/anchors, duplicate or non-string keys, timestamps, deep nesting."""

    yaml_implicit_resolvers = {  # noqa: RUF012 - PyYAML reads this class attribute
        ch: [(tag, rx) for tag, rx in resolvers if tag != _TIMESTAMP]
        for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise _Refused(mark, "aliases (*name) are not accepted")
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if getattr(event, "anchor", None) is not None:
            raise _Refused(event.start_mark, "anchors (&name) are not accepted")
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _Refused(event.start_mark, f"nesting deeper than {MAX_DEPTH} levels")
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        return _checked_mapping(self, node)


class _Refused(yaml.YAMLError):
    def __init__(self, mark: Any, what: str) -> None:
        super().__init__(what)
        self.mark = mark
        self.what = what

    def __str__(self) -> str:
        where = f"line {self.mark.line + 1}, column {self.mark.column + 1}" if self.mark else "?"
        return f"{self.what} ({where})"


_CBase: Any = getattr(yaml, "CSafeLoader", None)


def _scan_events(text: str) -> None:
    """First pass with libyaml's event parser: refuse aliases, anchors, deep nesting, many docs."""
    depth = documents = 0
    for event in yaml.parse(text, Loader=_CBase):
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(event.start_mark, "aliases (*name) are not accepted")
        if getattr(event, "anchor", None) is not None:
            raise _Refused(event.start_mark, "anchors (&name) are not accepted")
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth >= MAX_DEPTH:
                raise _Refused(event.start_mark, f"nesting deeper than {MAX_DEPTH} levels")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        elif isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > MAX_DOCUMENTS:
                raise _Refused(event.start_mark, f"more than {MAX_DOCUMENTS} documents")


if _CBase is not None:

    class _CLoader(_CBase):  # type: ignore[misc]
        """libyaml loader with the same resolver and mapping rules as :class:`_Loader`."""

        yaml_implicit_resolvers = _Loader.yaml_implicit_resolvers

        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            return _checked_mapping(self, node)


def _json_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _depth_ok(value: Any) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return False
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return True


def _parse_json(text: str, source: str) -> list[Any]:
    try:
        value = json.loads(text, object_pairs_hook=_json_pairs, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as e:
        raise InputError(f"{source}: not valid JSON: {e}", "fix the JSON syntax") from e
    if not _depth_ok(value):
        raise InputError(f"{source}: nesting deeper than {MAX_DEPTH} levels", "flatten the file")
    return value if isinstance(value, list) else [value]


def _parse_yaml(text: str, source: str) -> list[Any]:
    docs: list[Any] = []
    try:
        if _CBase is not None:  # fast path: two libyaml passes, same refusals
            _scan_events(text)
            return list(yaml.load_all(text, Loader=_CLoader))
        loader = _Loader(text)
        try:
            while loader.check_data():  # type: ignore[no-untyped-call]
                if len(docs) >= MAX_DOCUMENTS:
                    raise InputError(
                        f"{source}: more than {MAX_DOCUMENTS} documents",
                        "split the file",
                    )
                docs.append(loader.get_data())
        finally:
            loader.dispose()
    except yaml.YAMLError as e:
        raise InputError(f"{source}: not valid YAML: {e}", "fix the YAML syntax") from e
    return docs


def load_documents(text: str, source: str) -> list[Document]:
    """Split ``text`` (YAML stream or JSON) into Kubernetes documents, refusing unsafe input."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise InputError(f"{source}: larger than {MAX_BYTES} bytes", "split the file")
    if source.lower().endswith(".json"):
        raw = _parse_json(text, source)
    else:
        raw = _parse_yaml(text, source)
    out: list[Document] = []
    for index, doc in enumerate(raw):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise InputError(
                f"{source}: document {index} is a {type(doc).__name__}, expected a mapping",
                "each document must be one Kubernetes object",
            )
        if doc.get("apiVersion") == "v1" and doc.get("kind") == "List":
            items = doc.get("items")
            if not isinstance(items, list):
                raise InputError(
                    f"{source}: document {index} is a List without an items list",
                    "give the List an items list",
                )
            for j, item in enumerate(items):
                if not isinstance(item, dict):
                    raise InputError(
                        f"{source}: document {index} item {j} is not a mapping",
                        "each List item must be one Kubernetes object",
                    )
                out.append(Document(source, index, item, j))
        else:
            out.append(Document(source, index, doc))
    if len(out) > MAX_DOCUMENTS:
        raise InputError(f"{source}: more than {MAX_DOCUMENTS} documents", "split the file")
    return out
