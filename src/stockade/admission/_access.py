"""Typed reads from an untrusted manifest: a field of the wrong type is an error, never a guess.

Kubernetes would reject a Pod whose ``privileged`` is the string ``"true"``; a validator that
silently read it as false would allow what it should not. Every reader here returns ``None``
for an absent or null field and raises :class:`ManifestError` (got X, expected Y, at PATH) for
any other type mismatch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._model import ManifestError

__all__ = [
    "get_bool",
    "get_int",
    "get_list",
    "get_map",
    "get_str",
    "get_str_list",
    "require_map",
    "type_name",
]

_FIX = "fix the manifest so the field has the type the Kubernetes API expects"


def type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "mapping"
    if isinstance(value, list | tuple):
        return "list"
    return type(value).__name__


def _bad(path: str, value: object, expected: str) -> ManifestError:
    return ManifestError(f"{path}: got {type_name(value)}, expected {expected}", _FIX)


def _field(obj: Mapping[str, Any], key: str) -> Any:
    return obj.get(key)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def get_map(obj: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any] | None:
    value = _field(obj, key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise _bad(_join(path, key), value, "a mapping")
    return value


def require_map(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _bad(path, value, "a mapping")
    return value


def get_list(obj: Mapping[str, Any], key: str, path: str) -> Sequence[Any] | None:
    value = _field(obj, key)
    if value is None:
        return None
    if not isinstance(value, list | tuple):
        raise _bad(_join(path, key), value, "a list")
    return value


def get_bool(obj: Mapping[str, Any], key: str, path: str) -> bool | None:
    value = _field(obj, key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise _bad(_join(path, key), value, "a boolean")
    return value


def get_int(obj: Mapping[str, Any], key: str, path: str) -> int | None:
    value = _field(obj, key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(_join(path, key), value, "an integer")
    return value


def get_str(obj: Mapping[str, Any], key: str, path: str) -> str | None:
    value = _field(obj, key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad(_join(path, key), value, "a string")
    return value


def get_str_list(obj: Mapping[str, Any], key: str, path: str) -> list[str] | None:
    """A list whose every item is a string (capability names, ...)."""
    items = get_list(obj, key, path)
    if items is None:
        return None
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise _bad(f"{_join(path, key)}[{i}]", item, "a string")
    return list(items)
